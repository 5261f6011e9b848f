"""EDVR configurations compared with BasicSR 1.4.2: shared by the torch generator and the tests.

Torch-free on purpose: `tests/data/make_edvr_refs.py` (run by hand in a torch environment) and
`tests/filters/test_edvr_upstream.py` (no torch) both build each case's weights and input frames
from the same seeds here, so only BasicSR's outputs need to be stored
(`tests/data/edvr_upstream.npz`). Changing a case changes its weights: regenerate the references.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.arch.edvr_numpy import State, random_state

__all__ = ["BASICSR_PADDING", "CASES", "REFS", "Case"]

REFS = "edvr_upstream.npz"
"""File name of the references under tests/data/."""

BASICSR_PADDING = {"mirror": "reflection", "replicate": "replicate"}
"""vssr.EDVR `edge` -> the `padding` of BasicSR's `generate_frame_indices` that means the same."""


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    width: int
    height: int
    """Source frame size. Sizes that are not a multiple of EDVR's (4, or 16 with hr_in) are padded
    by vssr (reflect, right and bottom); the generator pads the same way before BasicSR's forward,
    which asserts the multiple, and crops its output."""
    length: int
    """Source clip length."""
    outputs: tuple[int, ...]
    """Output frames stored: an edge frame (window beyond the clip) and an interior one."""
    edge: str = "mirror"
    num_feat: int = 16
    num_frame: int = 5
    groups: int = 8
    extract: int = 1
    reconstruct: int = 1
    predeblur: bool = False
    hr_in: bool = False
    tsa: bool = True
    seed: int = 0

    def state(self) -> State:
        """BasicSR-keyed float32 weights (seeded numpy normal; offsets large enough to leave the frame)."""
        return random_state(num_feat=self.num_feat, num_frame=self.num_frame, groups=self.groups,
                            extract=self.extract, reconstruct=self.reconstruct, predeblur=self.predeblur,
                            hr_in=self.hr_in, tsa=self.tsa, seed=self.seed)

    def frames(self) -> np.ndarray:
        """The source clip, [length, 3, H, W] float32 in [0, 1]: smooth content plus fine noise, so
        that sub-pixel offsets sample something that varies."""
        rng = np.random.default_rng(self.seed + 1000)
        y, x = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        frames = []
        for t in range(self.length):
            phase = rng.uniform(0, 2 * np.pi, 3).astype(np.float32)[:, None, None]
            smooth = 0.5 + 0.35 * np.sin(0.45 * x[None] + 0.3 * y[None] + 0.4 * t + phase)
            frames.append(smooth + 0.1 * rng.random((3, self.height, self.width), dtype=np.float32))
        return np.clip(np.stack(frames), 0, 1).astype(np.float32)


CASES: tuple[Case, ...] = (
    # TSA fusion, 5 frames, an aligned size
    Case("tsa", 16, 12, length=5, outputs=(0, 2), seed=1),
    # plain 1x1 fusion, 4 deformable groups, a size padded to 20x12
    Case("no_tsa_padded", 18, 10, length=5, outputs=(2, 4), groups=4, tsa=False, seed=2),
    # 7-frame window (the L / Vimeo90K layout), replicate edges
    Case("t7_replicate", 12, 8, length=7, outputs=(0, 3), edge="replicate", num_frame=7, seed=3),
    # predeblur module in front of a x4 net
    Case("predeblur", 16, 8, length=5, outputs=(1, 2), predeblur=True, seed=4),
    # hr_in deblurring (EDVR_L_deblur's layout, small): x1 output; 40x24 is padded to 48x32
    Case("deblur_hr_in", 40, 24, length=5, outputs=(0, 2), edge="replicate", predeblur=True, hr_in=True,
         seed=5),
    # the real EDVR-M shape: 64 features, 8 groups, 5 extraction and 10 reconstruction blocks
    Case("M", 12, 8, length=5, outputs=(2,), num_feat=64, extract=5, reconstruct=10, seed=6),
    # the real EDVR-L shape of the Vimeo90K model: 128 features, 5 + 40 blocks, 7 frames
    Case("L_t7", 8, 8, length=7, outputs=(3,), num_feat=128, num_frame=7, extract=5, reconstruct=40, seed=7),
)
