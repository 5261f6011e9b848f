"""`vssr download ...` on the command line (registered by vssr/cli.py)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..files import models_dir
from .catalog import CATALOG, FAMILIES, MIRROR_ENV, destination, find
from .fetch import DownloadError, download

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `download` on the `vssr` command line (cli.py calls this)."""
    p = subparsers.add_parser(
        "download", help="download official RIFE / EDVR / Real-ESRGAN weights into the models folder",
        description="Download official weights into the models folder, resumably, checked by sha256 "
                    "where known and by loading them. Examples: vssr download rife 4.22 4.26; "
                    "vssr download edvr m-x4-reds; vssr download realesrgan all; vssr download --list",
    )
    p.add_argument("family", nargs="?", choices=FAMILIES, help="model family")
    p.add_argument("names", nargs="*", help="model names (see --list), or all")
    p.add_argument("--list", action="store_true", help="show what can be downloaded and what is present")
    p.add_argument("--url", default=None, metavar="BASE",
                   help=f"mirror serving BASE/<upstream file name> (default: ${MIRROR_ENV}, else upstream)")
    p.add_argument("--force", action="store_true", help="download again files that are present")
    p.add_argument("--retries", type=int, default=3, help="resume a broken connection this many times")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: tests and callers may swap them
    if args.list:
        _write_list(args.family, out)
        return 0
    if args.retries < 0:
        err.write(f"vssr download: --retries must be >= 0, not {args.retries}\n")
        return 2
    if args.family is None or not args.names:
        family = args.family or "<family>"
        err.write(f"vssr download: name the {family} models to fetch (or all); `vssr download --list` shows them\n")
        return 2
    try:
        if any(n.lower() == "all" for n in args.names):
            entries = [e for e in CATALOG if e.family == args.family]
        else:
            entries = [find(args.family, n) for n in args.names]
    except KeyError as e:
        err.write(f"vssr download: {e.args[0]}\n")
        return 2
    failed = 0
    for entry in dict.fromkeys(entries):  # once each, in the order asked
        try:
            download(entry, base_url=args.url, force=args.force, retries=args.retries,
                     report=lambda line: out.write(line + "\n"))
        except DownloadError as e:
            err.write(f"vssr download: {entry.family} {entry.name}: {e}\n")
            failed += 1
        except KeyboardInterrupt:
            err.write(f"vssr download: {entry.family} {entry.name}: interrupted; the .part file is kept, run the "
                      "same command again to resume\n")
            return 130
    return 1 if failed else 0


def _write_list(family: str | None, out: TextIO) -> None:
    out.write(f"models folder: {models_dir()}\n")
    for entry in CATALOG:
        if family not in (None, entry.family):
            continue
        dest = destination(entry.family, entry.name)
        part = dest.with_name(dest.name + ".part")
        if dest.is_file():
            state = "present"
        elif part.is_file():
            state = f"partial ({part.stat().st_size / 2**20:.1f} MiB; run again to resume)"
        else:
            state = "-"
        checked = "sha256" if entry.sha256 and len(entry.sha256) == 64 else (
            "sha256 prefix" if entry.sha256 else "load only")
        out.write(f"{entry.family:<11} {entry.name:<18} {entry.file:<46} {checked:<13} {state}\n")
