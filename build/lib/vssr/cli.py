"""Command line: `python -m vssr models | engines list | engines prune`."""

from __future__ import annotations

import argparse
import logging
import sys
import time

__all__ = ["main"]


def _models(args: argparse.Namespace) -> int:
    from . import catalog

    print(catalog.format_table(catalog.models()))
    return 0


def _engines(args: argparse.Namespace) -> int:
    from .backends import trt_cache

    if args.action == "list":
        records = trt_cache.list_engines(args.folder)
        for record in records:
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.last_used))
            built = record.info.get("build_seconds")
            how = f", built in {built:.0f} s" if isinstance(built, int | float) else ""
            print(f"{record.path.name}  {record.bytes / 2**20:.1f} MiB, last used {used}{how}")
        print(f"{len(records)} engine(s) in {trt_cache.engine_folder(args.folder)}")
        return 0
    if args.unused_days is not None and args.unused_days < 0:
        print("--unused-days must be >= 0", file=sys.stderr)
        return 2
    removed = trt_cache.prune_engines(args.folder, unused_days=args.unused_days, dry_run=args.dry_run)
    for path in removed:
        print(path)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(removed)} file(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vssr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list every model, where its weights come from and whether they are here").set_defaults(run=_models)
    engines = sub.add_parser("engines", help="list or prune TensorRT engines")
    engines.add_argument("action", choices=["list", "prune"])
    engines.add_argument("--folder", default=None, help="engine folder (default: VSSR_ENGINE_DIR or engines/)")
    engines.add_argument("--unused-days", type=float, default=None, help="prune: engines unused this long")
    engines.add_argument("--dry-run", action="store_true", help="prune: only print what would go")
    engines.set_defaults(run=_engines)
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    logging.getLogger("vssr").setLevel(level)  # `import vssr` lets INFO through for VapourSynth's log
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
