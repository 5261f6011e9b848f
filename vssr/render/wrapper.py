"""The script vspipe runs for every chunk (and for the probe): it sets VapourSynth's thread count,
then runs the user's script in its own namespace with the -a arguments as globals.

    vspipe -a vssr_script=USER.vpy -a vssr_threads=1 [-a name=value ...] wrapper.py -

vspipe evaluates this file directly (it is not imported as part of the package). With
`-a vssr_probe=FILE` it also writes what the render driver needs to know about the outputs to FILE;
with `-a vssr_access_check=1` that includes hashes of output frames read out of order.
"""

import hashlib
import json
import os
import runpy
import sys

import numpy as np
import vapoursynth as vs

_given = globals()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _colour(frame: vs.VideoFrame) -> dict[str, int]:
    """The colour props of the output's first frame (the encoder tags the file with them)."""
    props = frame.props
    return {k: int(props[k]) for k in ("_Matrix", "_Transfer", "_Primaries", "_Range") if k in props}


def _digest(frame: vs.VideoFrame) -> str:
    digest = hashlib.sha256()
    for plane in range(frame.format.num_planes):
        digest.update(np.asarray(frame[plane]).tobytes())
    return digest.hexdigest()


def _access_reads(clip: vs.VideoNode) -> list[list[object]]:
    """[frame, sha256] of output frames 0 (the first read: sequential from a fresh source), last,
    0 and last, read in that order with the output's cache off, so that each is computed again.

    Chunks read the script out of order (each starts at its own frame, context frames included);
    a source whose seeking is not exact gives other pictures then, which this shows as a frame
    with two different hashes.
    """
    last = clip.num_frames - 1
    vs.core.std.SetVideoCache(clip, mode=0)  # this process only probes: nothing else reads the node
    return [[n, _digest(clip.get_frame(n))] for n in (0, last, 0, last)]


def _outputs(chosen: str) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for index, output in vs.get_outputs().items():
        index_text = str(index)
        clip = output.clip if isinstance(output, vs.VideoOutputTuple) else None
        if clip is None:
            found[str(index)] = {"video": False}
            continue
        fmt = clip.format
        found[str(index)] = {
            "video": True,
            "num_frames": clip.num_frames,
            "fps_num": clip.fps.numerator,
            "fps_den": clip.fps.denominator,
            "width": clip.width,
            "height": clip.height,
            "format": fmt.name if fmt is not None else "",
            "colour": _colour(clip.get_frame(0)) if index_text == chosen else {},
            "y4m": fmt is not None and fmt.color_family in (vs.YUV, vs.GRAY) and fmt.sample_type == vs.INTEGER,
        }
    return found


def _main() -> None:
    script = _text(_given["vssr_script"])
    threads = int(_text(_given.get("vssr_threads", "0")))
    probe = _text(_given.get("vssr_probe", ""))
    args = {k: _text(v) for k, v in _given.items() if not k.startswith("__") and not k.startswith("vssr_")
            and isinstance(v, str | bytes)}
    if threads > 0:
        vs.core.num_threads = threads
    # as if vspipe ran the script itself: its folder is the working directory and on sys.path
    folder = os.path.dirname(os.path.abspath(script))
    os.chdir(folder)
    sys.path.insert(0, folder)
    namespace = runpy.run_path(script, init_globals={**args, "vssr_threads": threads}, run_name="__vapoursynth__")
    if probe:  # "INDEX:FILE": describe the outputs, the chosen one in full, into FILE
        chosen, _, path = probe.partition(":")
        source = namespace.get("source")
        found = os.path.abspath(source) if isinstance(source, str) and source else None
        output = vs.get_outputs().get(int(chosen))
        access = None  # before any other read of the output: its first read of frame 0 is sequential
        if _text(_given.get("vssr_access_check", "")) == "1" and isinstance(output, vs.VideoOutputTuple):
            access = _access_reads(output.clip)
        info = {"outputs": _outputs(chosen), "source": found, "access_reads": access}
        with open(path, "w") as f:
            json.dump(info, f)


if __name__ == "__vapoursynth__":  # run by vspipe; importing this module does nothing
    _main()
