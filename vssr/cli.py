"""Command line: `vssr` (or `python -m vssr`) models | engines (caches) | build | download | render | upscale | interpolate."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def _models(args: argparse.Namespace) -> int:
    from . import catalog

    print(catalog.format_table(catalog.models()))
    return 0


def _engines(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import caches

    folder = Path(args.folder) if args.folder else None
    if args.action == "list":
        found = caches.entries(engine_dir=folder)
        for entry in found:
            print(caches.describe(entry))
        total = sum(e.bytes for e in found)
        damaged = sum(not e.intact for e in found)
        print(f"{len(found)} cached item(s), {total / 2**20:.1f} MiB" + (f", {damaged} damaged" if damaged else ""))
        return 0
    if args.unused_days is not None and args.unused_days < 0:
        print("--unused-days must be >= 0", file=sys.stderr)
        return 2
    removed = caches.prune(args.unused_days, dry_run=args.dry_run, engine_dir=folder)
    for path in removed:
        print(path)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} item(s)")
    return 0


def _build(args: argparse.Namespace) -> int:
    from . import caches
    from .build import build_model, build_script

    pairs = dict(a.split("=", 1) for a in args.arg if "=" in a)
    if len(pairs) != len(args.arg):
        print("-a takes name=value", file=sys.stderr)
        return 2
    if (args.script is None) == (args.model_for is None) or (args.model_for is None) != (args.size is None):
        print("vssr build takes SCRIPT.vpy, or --for MODEL --size WxH", file=sys.stderr)
        return 2
    logging.getLogger("vssr").setLevel(logging.INFO)  # the build's progress
    import vapoursynth as vs

    try:
        if args.script is not None:
            written = build_script(args.script, pairs)
        else:
            written = build_model(args.model_for, *args.size, model=args.model, backend=args.backend,
                                  sample_format=args.format, tilesize=args.tilesize)
    except FileNotFoundError as err:  # no such script
        print(f"vssr build: {err}", file=sys.stderr)
        return 2
    except (ValueError, vs.Error) as err:  # a missing --model; the model function's VssrError
        print(err, file=sys.stderr)
        return 2
    for entry in written:
        print(caches.describe(entry))
    print(f"{len(written)} cache item(s) built or used; the script's first frame will not wait for them")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vssr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list every model, where its weights come from and whether they are here").set_defaults(run=_models)
    engines = sub.add_parser(
        "engines", aliases=["caches"],
        help="list or prune every cache: TensorRT engines, RTX runtime caches, OpenVINO models, ONNX")
    engines.add_argument("action", choices=["list", "prune"])
    engines.add_argument("--folder", default=None, help="engine folder (default: VSSR_ENGINE_DIR or engines/)")
    engines.add_argument("--unused-days", type=float, default=None, help="prune: items unused this long (default: only leftovers)")
    engines.add_argument("--dry-run", action="store_true", help="prune: only print what would go")
    engines.set_defaults(run=_engines)
    build = sub.add_parser("build", help="build every engine a .vpy script (or --for a model and size) needs, ahead of time")
    build.add_argument("script", nargs="?", default=None, help="the VapourSynth script (.vpy)")
    build.add_argument("-a", "--arg", action="append", default=[], help="name=value, as vspipe's -a")
    from .build import add_model_options  # --for MODEL --size WxH ...: vssr/build.py

    add_model_options(build)
    build.set_defaults(run=_build)
    from .download import add_parser as add_download_parser  # `vssr download`: vssr/download/command.py

    add_download_parser(sub)
    from .render.cli import add_commands as add_render_commands  # render, upscale, interpolate

    add_render_commands(sub)
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    logging.getLogger("vssr").setLevel(level)  # `import vssr` lets INFO through for VapourSynth's log
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
