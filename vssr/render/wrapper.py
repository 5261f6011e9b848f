"""The script vspipe runs for every chunk (and for the probe): it sets VapourSynth's thread count,
then runs the user's script in its own namespace with the -a arguments as globals.

    vspipe -a vssr_script=USER.vpy -a vssr_threads=1 [-a name=value ...] wrapper.py -

vspipe evaluates this file directly (it is not imported as part of the package). With
`-a vssr_probe=FILE` it also writes what the render driver needs to know about the outputs to FILE.
"""

import json
import os
import runpy
import sys

import vapoursynth as vs

_given = globals()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _colour(clip: vs.VideoNode) -> dict[str, int]:
    """The colour props of the output's first frame (the encoder tags the file with them)."""
    props = clip.get_frame(0).props
    return {k: int(props[k]) for k in ("_Matrix", "_Transfer", "_Primaries", "_Range") if k in props}


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
            "colour": _colour(clip) if index_text == chosen else {},
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
        info = {"outputs": _outputs(chosen), "source": found}
        with open(path, "w") as f:
            json.dump(info, f)


if __name__ == "__vapoursynth__":  # run by vspipe; importing this module does nothing
    _main()
