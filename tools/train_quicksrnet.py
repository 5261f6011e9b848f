"""Train QuickSRNet (arXiv 2303.04336) for vssr. Dev-only: needs PyTorch (python 3.11 venv).

    python3.11 -m venv .venv-train && .venv-train/bin/pip install torch==2.13.0 numpy pillow
    .venv-train/bin/python tools/train_quicksrnet.py --size small --scale 2 --minutes 62 \
        --out /tmp/qsr_small_x2

Recipe: identity initialisation (the paper's), ReLU1 = clip(0, 1) after every conv (the last one
before depth-to-space), L1 loss, Adam, batch 32, 64x64 HR crops from T91 + BSD200 (without
BSD200/302003.png, the source of Set5's woman), random flips and 90-degree rotations, LR = MATLAB
bicubic downscale of the whole image (vssr.metrics.imresize), then aligned crops. Cosine learning
rate 1e-3 -> 1e-5 over a fixed wall-clock budget (``--minutes``): the schedule's progress is the
fraction of the budget used, so it runs to completion however busy the shared CPU is (the
iteration count reached is logged). ``--iterations N`` instead runs a fixed, deterministic schedule
of N iterations. A 0.999 moving average of the weights is kept and exported beside the raw weights.

``--init-from CKPT`` continues fp32 training from a checkpoint's moving average with a new
schedule (a warm restart, usually with a lower ``--lr``).

``--qat-from CKPT`` instead fine-tunes a checkpoint with int8 fake quantization (per-channel
symmetric weights, uint8 activations on [0, 1] as vssr.quant makes them) and exports the moving average of the
weights, which post-training int8 quantization then loses much less on.

Outputs in --out: ``ckpt.pt`` (resumable state), ``weights.npz`` / ``weights_ema.npz`` in the
canonical keys (cnn.0.weight ... conv_last.*), ``log.txt``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SIZES = {"small": (32, 2), "medium": (32, 5), "large": (64, 11)}


def _load_metrics():
    """vssr/metrics.py by path: the package __init__ imports vapoursynth, this venv lacks it."""
    spec = importlib.util.spec_from_file_location("vssr_metrics", ROOT / "vssr" / "metrics.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


metrics = _load_metrics()


class QuickSRNet(nn.Module):
    """Integer scales only; large uses the trainable anchor (input-to-output 1x1 conv)."""

    def __init__(self, size: str, scale: int) -> None:
        super().__init__()
        f, m = SIZES[size]
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, f, 3, padding=1), nn.Hardtanh(0.0, 1.0)]
        for _ in range(m):
            layers += [nn.Conv2d(f, f, 3, padding=1), nn.Hardtanh(0.0, 1.0)]
        self.cnn = nn.Sequential(*layers)
        self.conv_last = nn.Conv2d(f, 3 * scale * scale, 3, padding=1)
        # large: trainable input-to-output conv, under the zoo's key `anchor.net.*`
        self.anchor = nn.Sequential() if size == "large" else None
        if self.anchor is not None:
            self.anchor.add_module("net", nn.Conv2d(3, 3 * scale * scale, 1))
        self.shuffle = nn.PixelShuffle(scale)
        self._identity_init()

    @torch.no_grad()
    def _identity_init(self) -> None:
        s2 = self.scale * self.scale
        convs = [c for c in self.cnn if isinstance(c, nn.Conv2d)]
        for conv in [*convs, self.conv_last]:
            conv.weight.mul_(0.1)
            conv.bias.mul_(0.1)
        for conv in convs:
            for i in range(min(conv.in_channels, conv.out_channels)):
                conv.weight[i, i, 1, 1] += 1.0
        if self.anchor is None:
            for o in range(self.conv_last.out_channels):
                self.conv_last.weight[o, o // s2, 1, 1] += 1.0
        else:
            a = self.anchor.net
            a.weight.zero_()
            a.bias.zero_()
            for o in range(a.out_channels):
                a.weight[o, o // s2, 0, 0] = 1.0

    def forward(self, x: torch.Tensor, wq=None, aq=None) -> torch.Tensor:
        """wq(weight) / aq(activation): optional fake-quantizers (QAT)."""
        wq = wq or (lambda w: w)
        aq = aq or (lambda a: a)
        h = aq(x)
        for mod in self.cnn:
            if isinstance(mod, nn.Conv2d):
                h = nn.functional.conv2d(h, wq(mod.weight), mod.bias, padding=1)
            else:
                h = aq(torch.clamp(h, 0.0, 1.0))
        y = nn.functional.conv2d(h, wq(self.conv_last.weight), self.conv_last.bias, padding=1)
        if self.anchor is not None:
            y = y + nn.functional.conv2d(aq(x), wq(self.anchor.net.weight), self.anchor.net.bias)
        return self.shuffle(torch.clamp(y, 0.0, 1.0))


def export(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **state)
    tmp.replace(path)


# --- data ---------------------------------------------------------------------------------------


def load_training_images(scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    files = sorted((DATA / "sr-train" / "T91").glob("*.bmp")) + sorted((DATA / "sr-train" / "BSD200").glob("*.png"))
    files = [f for f in files if f.name != "302003.png"]  # source of Set5 woman
    pairs = []
    for f in files:
        hr = metrics.mod_crop(np.asarray(Image.open(f).convert("RGB")), scale)
        lr = metrics.imresize(hr, 1 / scale)
        pairs.append((hr, lr))
    return pairs


class Sampler:
    def __init__(self, pairs, scale: int, crop: int, rng: np.random.Generator) -> None:
        self.pairs = [(h, l) for h, l in pairs if min(l.shape[:2]) >= crop // scale]
        self.scale, self.crop, self.rng = scale, crop, rng
        lc = crop // scale
        counts = np.array([(l.shape[0] - lc + 1) * (l.shape[1] - lc + 1) for _, l in self.pairs], float)
        self.p = counts / counts.sum()  # uniform over all crop positions

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, lc = self.scale, self.crop // self.scale
        lrs, hrs = [], []
        for i in self.rng.choice(len(self.pairs), size=n, p=self.p):
            hr, lr = self.pairs[i]
            y = int(self.rng.integers(0, lr.shape[0] - lc + 1))
            x = int(self.rng.integers(0, lr.shape[1] - lc + 1))
            l = lr[y : y + lc, x : x + lc]
            h = hr[y * s : (y + lc) * s, x * s : (x + lc) * s]
            k = int(self.rng.integers(0, 4))
            l, h = np.rot90(l, k), np.rot90(h, k)
            if self.rng.integers(0, 2):
                l, h = l[:, ::-1], h[:, ::-1]
            lrs.append(l)
            hrs.append(h)
        lr_t = torch.from_numpy(np.ascontiguousarray(np.stack(lrs).transpose(0, 3, 1, 2))).float() / 255
        hr_t = torch.from_numpy(np.ascontiguousarray(np.stack(hrs).transpose(0, 3, 1, 2))).float() / 255
        return lr_t, hr_t


# --- evaluation ---------------------------------------------------------------------------------


def load_set(name: str, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for f in sorted((DATA / "sr-bench" / name).glob("*.png")):
        img = np.asarray(Image.open(f))
        if img.ndim == 2:  # bridge.png: evaluated as RGB-replicated input, scored on grey as Y
            img = np.repeat(img[..., None], 3, axis=2)
        hr = metrics.mod_crop(img[..., :3], scale)
        out.append((hr, metrics.imresize(hr, 1 / scale)))
    return out


@torch.no_grad()
def evaluate(model: nn.Module, data, scale: int, **quant) -> float:
    model.eval()
    scores = []
    for hr, lr in data:
        x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1))).float()[None] / 255
        sr = model(x, **quant)[0].numpy().transpose(1, 2, 0)
        scores.append(metrics.psnr(metrics.rgb_to_y(metrics.to_uint8(sr)), metrics.rgb_to_y(hr), border=scale))
    model.train()
    return float(np.mean(scores))


# --- fake quantization (QAT) --------------------------------------------------------------------


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric int8, straight-through gradient."""
    amax = w.detach().abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    scale = amax / 127.0
    q = torch.clamp(torch.round(w / scale), -127, 127) * scale
    return w + (q - w).detach()


def fake_quant_act(a: torch.Tensor) -> torch.Tensor:
    """uint8 over [0, 1] (vssr.quant's default for ReLU1 outputs and the input: zero point 0)."""
    q = torch.clamp(torch.round(a * 255.0), 0, 255) / 255.0
    return a + (q - a).detach()


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=SIZES, default="small")
    ap.add_argument("--scale", type=int, choices=(2, 3, 4), default=2)
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=int, default=64, help="HR crop size")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-min", type=float, default=1e-5)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, help="fixed schedule length (default: follow --minutes)")
    ap.add_argument("--eval-every", type=float, default=10.0, help="minutes between Set5 checks")
    ap.add_argument("--save-every", type=float, default=3.0, help="minutes between checkpoints")
    ap.add_argument("--qat-from", type=Path, help="fine-tune this ckpt.pt with int8 fake quantization")
    ap.add_argument("--init-from", type=Path, help="continue fp32 training from this ckpt.pt's moving average (a warm restart)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    logf = open(args.out / "log.txt", "a")  # noqa: SIM115 (open for the whole run)

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    log("args " + json.dumps({k: str(v) for k, v in vars(args).items()}) + " argv " + " ".join(sys.argv))
    t_load = time.perf_counter()
    sampler = Sampler(load_training_images(args.scale), args.scale, args.crop, rng)
    set5 = load_set("Set5", args.scale)
    log(f"data: {len(sampler.pairs)} training images loaded in {time.perf_counter() - t_load:.1f}s")

    model = QuickSRNet(args.size, args.scale)
    qat = args.qat_from is not None
    if qat:
        ck = torch.load(args.qat_from, map_location="cpu", weights_only=False)  # our own checkpoint
        model.load_state_dict(ck["ema"])  # start from the smoothed weights
        quant = {"wq": fake_quant_weight, "aq": fake_quant_act}
        log(
            f"QAT from {args.qat_from}: start Set5 fp32 {evaluate(model, set5, args.scale):.3f} "
            f"fakequant {evaluate(model, set5, args.scale, **quant):.3f}"
        )
    else:
        quant = {}
        if args.init_from is not None:
            ck = torch.load(args.init_from, map_location="cpu", weights_only=False)  # our own checkpoint
            model.load_state_dict(ck["ema"])
            log(f"warm restart from {args.init_from} (it {ck['it']}): Set5 {evaluate(model, set5, args.scale):.3f}")
    ema = QuickSRNet(args.size, args.scale)
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    l1 = nn.L1Loss()

    budget = args.minutes * 60.0
    t0 = time.perf_counter()
    total = args.iterations
    last_save = last_eval = t0
    it = 0
    loss_acc = 0.0

    def save(tag: str) -> None:
        torch.save(
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "it": it,
                "total": total,
                "args": {k: str(v) for k, v in vars(args).items()},
            },
            args.out / "ckpt.tmp",
        )
        (args.out / "ckpt.tmp").replace(args.out / "ckpt.pt")
        export(model, args.out / "weights.npz")
        export(ema, args.out / "weights_ema.npz")
        log(f"saved ({tag}) it={it}")

    while True:
        if total is not None:
            if it >= total:
                break
            frac = it / total
        else:
            frac = (time.perf_counter() - t0) / budget
            if frac >= 1.0:
                break
        lr = args.lr_min + 0.5 * (args.lr - args.lr_min) * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = sampler.batch(args.batch)
        loss = l1(model(x, **quant), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            d = args.ema if it > 100 or qat or args.init_from else 0.0
            for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        it += 1
        loss_acc += loss.item()
        now = time.perf_counter()
        if it % 500 == 0:
            log(f"it {it}/{total} lr {lr:.2e} l1 {loss_acc / 500:.5f} {it / (now - t0):.2f} it/s")
            loss_acc = 0.0
        if now - last_eval > args.eval_every * 60:
            last_eval = now
            msg = f"it {it} Set5 raw {evaluate(model, set5, args.scale):.3f} ema {evaluate(ema, set5, args.scale):.3f}"
            if qat:
                msg += f" ema-fakequant {evaluate(ema, set5, args.scale, **quant):.3f}"
            log(msg)
        if now - last_save > args.save_every * 60:
            last_save = now
            save("periodic")
    save("final")
    msg = f"final it {it} Set5 raw {evaluate(model, set5, args.scale):.3f} ema {evaluate(ema, set5, args.scale):.3f}"
    if qat:
        msg += f" ema-fakequant {evaluate(ema, set5, args.scale, **quant):.3f}"
    log(msg + f" wall {(time.perf_counter() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
