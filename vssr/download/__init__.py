"""`vssr download`: official RIFE, EDVR and Real-ESRGAN weights, fetched into the models folder.

One table (`CATALOG`) says, per file, where it comes from upstream, its sha256 when known and
which architecture it must load as; `destination(family, name)` is the one place that says where
a file goes (`vssr.RIFE(model="4.22")` looks there too).

A download is written to `<destination>.part`, continued with an HTTP Range request when that file
exists (a server that ignores Range restarts it), checked (size, sha256 or the 8-hex prefix that
BasicSR puts in its file names, then loaded with vssr's own readers) and only then renamed to its
final name. A file that fails a check is removed; a download cut short keeps its `.part` so the
next run resumes it. Nothing here imports vapoursynth or torch.

catalog.py: the table, `find`, `destination`, `url_for`; fetch.py: `download` (HTTP, checks,
rename); command.py: the `vssr download` subcommand.
"""

from .catalog import CATALOG, FAMILIES, MIRROR_ENV, Entry, destination, find, url_for
from .command import add_parser
from .fetch import DownloadError, download

__all__ = [
    "CATALOG",
    "FAMILIES",
    "MIRROR_ENV",
    "DownloadError",
    "Entry",
    "add_parser",
    "destination",
    "download",
    "find",
    "url_for",
]
