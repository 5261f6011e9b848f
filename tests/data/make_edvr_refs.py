"""Write tests/data/edvr_upstream.npz: BasicSR 1.4.2's EDVR outputs for tests/arch/edvr_cases.py.

Run by hand, in a throwaway environment with torch (CPU) and numpy, never by CI:

    bash scripts/refenv.sh && .refenv/bin/python tests/data/make_edvr_refs.py [--basicsr /path/to/basicsr-1.4.2]

What runs is upstream code: BasicSR's `basicsr/archs/edvr_arch.py`, `arch_util.py` (DCNv2Pack,
ResidualBlockNoBN) and `ops/dcn/deform_conv.py` (ModulatedDeformConvPack), loaded behind stub
parent packages (BasicSR's package `__init__` files import its whole training stack). BasicSR 1.4.2's
DCNv2Pack calls `torchvision.ops.deform_conv2d`; torchvision is not installed here, so this file
provides it: a vectorised torch transcription of torchvision's CPU kernel
(torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp, `deform_conv2d_forward_kernel`): the same
sample positions, the same zero-outside rule and corner tests, the same bilinear sum order, the
mask multiplied after sampling, then per weight group a matmul with the column matrix and the
bias. `check_deform_conv2d` compares it with a scalar, loop-for-loop transcription of the kernel
before any reference is written.

Windows: BasicSR's own `generate_frame_indices` (basicsr/data/data_util.py, read from the source
without importing its module, which needs cv2). Frame sizes that are not a multiple of EDVR's
are padded as vssr pads them (reflect, bottom and right) and the output cropped: BasicSR itself
asserts the multiple.

Inputs and weights are rebuilt from seeds (tests/arch/edvr_cases.py); the file stores BasicSR's
outputs and, to catch a drift of the seeded generators, the input frames.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.arch.edvr_cases import BASICSR_PADDING, CASES, REFS, Case


# --- torchvision.ops.deform_conv2d, from torchvision's CPU kernel --------------------------------
def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _bilinear(planes: torch.Tensor, height: int, width: int, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The kernel's `bilinear_interpolate` over all positions at once.

    planes [B, G, Cg, height*width]; y, x [B, G, P] sample positions -> [B, G, Cg, P].
    """
    b, g, cg, _ = planes.shape
    inside = ~((y <= -1) | (height <= y) | (x <= -1) | (width <= x))
    h_low, w_low = torch.floor(y).long(), torch.floor(x).long()
    h_high, w_high = h_low + 1, w_low + 1
    lh, lw = y - h_low.to(y.dtype), x - w_low.to(x.dtype)
    hh, hw = 1 - lh, 1 - lw

    def corner(hi: torch.Tensor, wi: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        index = (hi.clamp(0, height - 1) * width + wi.clamp(0, width - 1)).reshape(b, g, 1, -1).expand(b, g, cg, -1)
        values = torch.gather(planes, 3, index)
        return torch.where((ok & inside).unsqueeze(2), values, torch.zeros((), dtype=values.dtype))

    v1 = corner(h_low, w_low, (h_low >= 0) & (w_low >= 0))
    v2 = corner(h_low, w_high, (h_low >= 0) & (w_high <= width - 1))
    v3 = corner(h_high, w_low, (h_high <= height - 1) & (w_low >= 0))
    v4 = corner(h_high, w_high, (h_high <= height - 1) & (w_high <= width - 1))
    w1, w2, w3, w4 = (t.unsqueeze(2) for t in (hh * hw, hh * lw, lh * hw, lh * lw))
    return w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4


OFFSET_STATS: list[tuple[float, float, float]] = []
"""Per deform_conv2d call: mean |offset|, max |offset| (pixels), share of taps whose position is
outside the frame (the zero rule at work); printed so that a reader sees the alignment is exercised."""


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int | tuple[int, int] = (1, 1), padding: int | tuple[int, int] = (0, 0),
                  dilation: int | tuple[int, int] = (1, 1), mask: torch.Tensor | None = None) -> torch.Tensor:
    """torchvision.ops.deform_conv2d (its signature; the CPU forward kernel's arithmetic)."""
    stride_h, stride_w = _pair(stride)
    pad_h, pad_w = _pair(padding)
    dil_h, dil_w = _pair(dilation)
    batch, in_ch, in_h, in_w = input.shape
    out_ch, ch_per_weight_grp, weight_h, weight_w = weight.shape
    n_weight_grps = in_ch // ch_per_weight_grp
    taps = weight_h * weight_w
    n_offset_grps = offset.shape[1] // (2 * taps)
    out_h = (in_h + 2 * pad_h - (dil_h * (weight_h - 1) + 1)) // stride_h + 1
    out_w = (in_w + 2 * pad_w - (dil_w * (weight_w - 1) + 1)) // stride_w + 1
    if mask is None:
        mask = torch.ones((batch, n_offset_grps * taps, out_h, out_w), dtype=input.dtype)
    if bias is None:
        bias = torch.zeros(out_ch, dtype=input.dtype)
    # offset channel (g, k = i * weight_w + j, {dy, dx}); mask channel (g, k)
    off = offset.reshape(batch, n_offset_grps, taps, 2, out_h, out_w)
    msk = mask.reshape(batch, n_offset_grps, taps, out_h, out_w)
    i = torch.arange(weight_h).repeat_interleave(weight_w).view(taps, 1, 1)
    j = torch.arange(weight_w).repeat(weight_h).view(taps, 1, 1)
    oy = torch.arange(out_h).view(1, out_h, 1)
    ox = torch.arange(out_w).view(1, 1, out_w)
    # integer part first, as in the kernel: (out_y * stride_h - pad_h) + i * dilation_h, then + offset
    base_y = ((oy * stride_h - pad_h) + i * dil_h).expand(taps, out_h, out_w).to(input.dtype)
    base_x = ((ox * stride_w - pad_w) + j * dil_w).expand(taps, out_h, out_w).to(input.dtype)
    y = (base_y + off[:, :, :, 0]).reshape(batch, n_offset_grps, -1)
    x = (base_x + off[:, :, :, 1]).reshape(batch, n_offset_grps, -1)
    outside = (y <= -1) | (in_h <= y) | (x <= -1) | (in_w <= x)
    OFFSET_STATS.append((float(off.abs().mean()), float(off.abs().max()), float(outside.float().mean())))
    planes = input.reshape(batch, n_offset_grps, in_ch // n_offset_grps, in_h * in_w)
    sampled = _bilinear(planes, in_h, in_w, y, x)  # [B, G, Cg, taps*P]
    columns = msk.reshape(batch, n_offset_grps, 1, -1) * sampled
    # column row = in_c * taps + k, as deformable_im2col writes it
    columns = columns.reshape(batch, in_ch * taps, out_h * out_w)
    columns = columns.reshape(batch, n_weight_grps, in_ch * taps // n_weight_grps, out_h * out_w)
    w = weight.reshape(n_weight_grps, out_ch // n_weight_grps, ch_per_weight_grp * taps)
    out = torch.einsum("gok,bgkp->bgop", w, columns).reshape(batch, out_ch, out_h, out_w)
    return out + bias.view(1, out_ch, 1, 1)


def _deform_conv2d_loops(input, offset, weight, bias, stride, padding, dilation, mask):  # type: ignore[no-untyped-def]
    """Scalar transcription of deformable_im2col_kernel + the grouped addmm (tiny inputs only)."""
    inp, off, msk = input.numpy(), offset.numpy(), mask.numpy()
    batch, in_ch, height, width = inp.shape
    out_ch, cpg, kh, kw = weight.shape
    groups = off.shape[1] // (2 * kh * kw)
    out_h = (height + 2 * padding - (dilation * (kh - 1) + 1)) // stride + 1
    out_w = (width + 2 * padding - (dilation * (kw - 1) + 1)) // stride + 1

    def bilinear(plane, h, w):  # type: ignore[no-untyped-def]
        if h <= -1 or height <= h or w <= -1 or width <= w:
            return 0.0
        h_low, w_low = int(np.floor(h)), int(np.floor(w))
        h_high, w_high = h_low + 1, w_low + 1
        lh, lw = h - h_low, w - w_low
        hh, hw = 1 - lh, 1 - lw
        v1 = plane[h_low, w_low] if h_low >= 0 and w_low >= 0 else 0.0
        v2 = plane[h_low, w_high] if h_low >= 0 and w_high <= width - 1 else 0.0
        v3 = plane[h_high, w_low] if h_high <= height - 1 and w_low >= 0 else 0.0
        v4 = plane[h_high, w_high] if h_high <= height - 1 and w_high <= width - 1 else 0.0
        return hh * hw * v1 + hh * lw * v2 + lh * hw * v3 + lh * lw * v4

    columns = np.zeros((batch, in_ch * kh * kw, out_h * out_w))
    for b in range(batch):
        for c in range(in_ch):
            grp = c // (in_ch // groups)
            for oy in range(out_h):
                for ox in range(out_w):
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = off[b, (grp * kh * kw + k) * 2, oy, ox]
                            dx = off[b, (grp * kh * kw + k) * 2 + 1, oy, ox]
                            m = msk[b, grp * kh * kw + k, oy, ox]
                            y = (oy * stride - padding) + i * dilation + dy
                            x = (ox * stride - padding) + j * dilation + dx
                            columns[b, c * kh * kw + k, oy * out_w + ox] = m * bilinear(inp[b, c], y, x)
    wg = in_ch // cpg
    w = weight.numpy().reshape(wg, out_ch // wg, -1)
    cols = columns.reshape(batch, wg, -1, out_h * out_w)
    out = np.einsum("gok,bgkp->bgop", w, cols).reshape(batch, out_ch, out_h, out_w)
    return out + bias.numpy().reshape(1, -1, 1, 1)


def check_deform_conv2d() -> float:
    """The vectorised port against the scalar transcription: offsets crossing every border,
    2 offset groups, 2 weight groups, stride 2, dilation 2. Returns max |d|."""
    rng = np.random.default_rng(7)
    worst = 0.0
    for stride, padding, dilation in ((1, 1, 1), (2, 2, 2)):
        x = torch.from_numpy(rng.random((2, 4, 5, 6), dtype=np.float32))
        weight = torch.from_numpy(rng.normal(size=(6, 2, 3, 3)).astype(np.float32))
        bias = torch.from_numpy(rng.normal(size=6).astype(np.float32))
        out_h = (5 + 2 * padding - (dilation * 2 + 1)) // stride + 1
        out_w = (6 + 2 * padding - (dilation * 2 + 1)) // stride + 1
        offset = torch.from_numpy(rng.normal(0, 3, (2, 2 * 2 * 9, out_h, out_w)).astype(np.float32))
        offset[0, 0, 0, 0] = 2.0  # integer positions, and positions exactly on the -1 / H border
        offset[0, 1, 0, 1] = -1.0
        mask = torch.from_numpy(rng.random((2, 2 * 9, out_h, out_w), dtype=np.float32))
        got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask).numpy()
        want = _deform_conv2d_loops(x, offset, weight, bias, stride, padding, dilation, mask)
        worst = max(worst, float(np.abs(got - want).max()))
    if worst > 1e-5:
        raise SystemExit(f"deform_conv2d port differs from the kernel transcription by {worst}")
    return worst


# --- BasicSR behind stub parents ---------------------------------------------------------------
class _Registry:
    def register(self, obj=None):  # type: ignore[no-untyped-def]
        return (lambda o: o) if obj is None else obj


def load_basicsr(src: Path) -> types.ModuleType:
    """basicsr.archs.edvr_arch from `src` (a basicsr-1.4.2 checkout), with only what it imports."""
    pkg = src / "basicsr"

    def stub(name: str, path: Path | None = None, **attrs: object) -> types.ModuleType:
        module = types.ModuleType(name)
        if path is not None:
            module.__path__ = [str(path)]  # a package whose __init__ is skipped; submodules load from here
        module.__dict__.update(attrs)
        sys.modules[name] = module
        return module

    stub("basicsr", pkg)
    stub("basicsr.archs", pkg / "archs")
    stub("basicsr.ops", pkg / "ops")
    stub("basicsr.utils", pkg / "utils", get_root_logger=lambda *a, **k: logging.getLogger("basicsr"))
    stub("basicsr.utils.registry", ARCH_REGISTRY=_Registry())
    ops = stub("torchvision.ops", deform_conv2d=deform_conv2d)
    stub("torchvision", __version__="0.20.0", ops=ops)  # >= 0.9.0: DCNv2Pack takes the torchvision path
    from basicsr.archs import edvr_arch  # the real file; basicsr.ops.dcn's real __init__ too

    return edvr_arch


def frame_indices_function(src: Path):  # type: ignore[no-untyped-def]
    """BasicSR's generate_frame_indices, compiled from data_util.py's source alone."""
    tree = ast.parse((src / "basicsr" / "data" / "data_util.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_frame_indices")
    namespace: dict[str, object] = {}
    exec(compile(ast.Module([node], []), "data_util.py", "exec"), namespace)
    return namespace["generate_frame_indices"]


def run_case(edvr_arch: types.ModuleType, indices_of, case: Case) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    model = edvr_arch.EDVR(num_in_ch=3, num_out_ch=3, num_feat=case.num_feat, num_frame=case.num_frame,
                           deformable_groups=case.groups, num_extract_block=case.extract,
                           num_reconstruct_block=case.reconstruct, center_frame_idx=None, hr_in=case.hr_in,
                           with_predeblur=case.predeblur, with_tsa=case.tsa)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in case.state().items()}, strict=True)
    model.eval()
    frames = case.frames()
    m, s = (16, 1) if case.hr_in else (4, 4)  # BasicSR's size assertion; x1 or x4 output
    ph, pw = -case.height % m, -case.width % m
    outputs = []
    for n in case.outputs:
        window = indices_of(n, case.length, case.num_frame, padding=BASICSR_PADDING[case.edge])
        x = torch.from_numpy(frames[window])  # [T, 3, H, W]
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        with torch.no_grad():
            y = model(x[None])[0]
        outputs.append(y[:, : case.height * s, : case.width * s].numpy())
    return frames, np.stack(outputs).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basicsr", type=Path, default=Path(__file__).resolve().parents[2] / ".refenv" / "src" / "basicsr-1.4.2",
                        help="an unpacked BasicSR 1.4.2 source tree (holding basicsr/)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(f"deform_conv2d port vs kernel transcription: max |d| {check_deform_conv2d():.2e}")
    edvr_arch = load_basicsr(args.basicsr)
    indices_of = frame_indices_function(args.basicsr)
    arrays: dict[str, np.ndarray] = {}
    for case in CASES:
        OFFSET_STATS.clear()
        frames, out = run_case(edvr_arch, indices_of, case)
        stats = np.array(OFFSET_STATS)
        arrays[f"{case.name}/input"] = frames
        arrays[f"{case.name}/output"] = out
        print(f"{case.name}: {case.width}x{case.height} -> {list(out.shape)}, output range "
              f"[{out.min():.3f}, {out.max():.3f}]; offsets mean {stats[:, 0].mean():.2f} px, max "
              f"{stats[:, 1].max():.1f} px, {100 * stats[:, 2].mean():.1f}% of taps outside the frame")
    arrays["meta"] = np.array(json.dumps({"torch": torch.__version__, "basicsr": "1.4.2",
                                          "cases": [c.name for c in CASES]}))
    target = Path(__file__).with_name(REFS)
    tmp = target.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    with np.load(tmp) as check:  # readable and complete before it replaces the old file
        assert set(check.files) == set(arrays)
    os.replace(tmp, target)
    print(f"wrote {target} ({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
