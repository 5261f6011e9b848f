"""vssr.EDVR against BasicSR 1.4.2's EDVR (upstream code, run in torch by tests/data/make_edvr_refs.py).

The weights and source frames are rebuilt here from the seeds in tests/arch/edvr_cases.py (no torch);
tests/data/edvr_upstream.npz holds BasicSR's outputs (torchvision's deform_conv2d arithmetic) for a
few output frames per case, windows chosen by BasicSR's generate_frame_indices. Every case runs
through a real VapourSynth core on ONNX Runtime, with both deformable-convolution forms vssr emits
and with and without the per-frame feature split. Tolerance: max |d| <= 1e-4 in fp32 (measured
about 1e-6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from tests.arch.edvr_cases import CASES, REFS, Case
from tests.clips import array_clip
from vssr.backends import Backend
from vssr.filters.edvr import EDVR
from vssr.glue.frames import frame_to_array

TOLERANCE = 1e-4

_REFS_PATH = Path(__file__).resolve().parents[1] / "data" / REFS


@pytest.fixture(scope="module")
def refs() -> dict[str, np.ndarray]:
    with np.load(_REFS_PATH) as data:
        return {k: data[k] for k in data.files}


def max_difference(core: vs.Core, case: Case, refs: dict[str, np.ndarray], backend: object = None,
                   **options: object) -> float:
    """max |vssr.EDVR - BasicSR| over the case's frames (backend None here means Backend.ORT())."""
    frames = refs[f"{case.name}/input"]
    np.testing.assert_array_equal(frames, case.frames())  # the seeded inputs have not drifted
    backend = Backend.ORT() if backend is None else backend
    if backend == "default":
        backend = None  # what a user's script gets with no backend=
    out = EDVR(array_clip(core, frames), case.state(), backend=backend, edge=case.edge, **options)  # type: ignore[arg-type]
    want = refs[f"{case.name}/output"]
    assert (out.height, out.width) == want.shape[2:]
    return max(float(np.abs(frame_to_array(out.get_frame(n)) - w).max())
               for n, w in zip(case.outputs, want, strict=True))


@pytest.mark.parametrize("deform", ["native", "decomposed"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_basicsr(core: vs.Core, refs: dict[str, np.ndarray], case: Case, deform: str) -> None:
    if deform == "native" and not Backend.ORT().supports_op("DeformConv"):
        pytest.skip("this onnxruntime has no DeformConv (needs >= 1.25)")
    assert max_difference(core, case, refs, deform=deform) <= TOLERANCE


@pytest.mark.parametrize("case", [c for c in CASES if not c.hr_in][:2], ids=lambda c: c.name)
def test_monolithic_matches_basicsr(core: vs.Core, refs: dict[str, np.ndarray], case: Case) -> None:
    """The one-graph form (vs-mlrt's 3T-channel input) is held to the same reference as the split."""
    assert max_difference(core, case, refs, split=False, deform="decomposed") <= TOLERANCE


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.name)
def test_default_path_matches_basicsr(core: vs.Core, refs: dict[str, np.ndarray], case: Case) -> None:
    """No backend= (OpenVINO when installed, fp32 for EDVR, deform="auto"), same reference and tolerance."""
    assert max_difference(core, case, refs, backend="default") <= TOLERANCE


def test_references_cover_the_cases(refs: dict[str, np.ndarray]) -> None:
    for case in CASES:
        scale = 1 if case.hr_in else 4
        out = refs[f"{case.name}/output"]
        assert out.shape == (len(case.outputs), 3, case.height * scale, case.width * scale)
    assert _REFS_PATH.stat().st_size < 400_000
