"""A full disk during a render: a clear message, the completed chunks kept, no partial file left,
and a rerun after space is freed resumes to the same frames. The work folder is a small tmpfs
(mounted as root; skipped where mounting is not permitted)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.render.helpers import framemd5, vssr

# 15 frames of 64x48 YUV420P8 as rawvideo: 69,120 bytes + Matroska's ~1 KB, 18 pages of tmpfs each;
# 160 KiB hold two chunks and the manifest, not a third
CHUNK = ["--encoder", "-c:v rawvideo", "--chunk-frames", "15", "--audio-from", "none"]
SMALL, LARGE = "160k", "4m"


def _mount(options: str, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                          text=True, check=False)


@pytest.fixture
def small_work_folder(tmp_path: Path) -> Iterator[Path]:
    """OUT's work folder, a tmpfs of SMALL bytes; unmounted in every case."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    work = tmp_path / "out.mkv.vssr-work"
    work.mkdir()
    mounted = _mount(f"size={SMALL}", work)
    if mounted.returncode != 0:
        pytest.skip(f"mount is not permitted here: {mounted.stderr.strip()}")
    try:
        yield work
    finally:
        subprocess.run(["umount", str(work)], check=True)


def test_full_disk_keeps_completed_chunks(tmp_path: Path, clip: Path, small_work_folder: Path) -> None:
    script = tmp_path / "bs.vpy"
    script.write_text(f"import vapoursynth as vs\nvs.core.bs.VideoSource({str(clip)!r}).set_output()\n")
    out, work = tmp_path / "out.mkv", small_work_folder
    run = vssr("render", script, "-o", out, *CHUNK, check=False)
    assert run.returncode == 1, run.stderr
    assert "No space left on device" in run.stderr and f"the disk holding {work} is full" in run.stderr, run.stderr
    assert "2 of 4 chunks are complete" in run.stderr and "to resume" in run.stderr, run.stderr
    assert sorted(p.name for p in work.iterdir()) == ["chunk-00000.mkv", "chunk-00001.mkv", "manifest.json"]
    manifest = json.loads((work / "manifest.json").read_text())
    assert [c["index"] for c in manifest["chunks"]] == [0, 1]
    assert not out.exists()

    subprocess.run(["mount", "-o", f"remount,size={LARGE}", str(work)], check=True)  # space freed
    vssr("render", script, "-o", out, *CHUNK)
    reference = tmp_path / "one-chunk.mkv"
    vssr("render", script, "-o", reference, "--encoder", "-c:v rawvideo", "--audio-from", "none")
    assert framemd5(out) == framemd5(reference) and len(framemd5(out)) == 60
