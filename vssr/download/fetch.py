"""Fetching one catalog file: resumable (HTTP Range on a `.part` file), checked (size, sha256,
loading with vssr's readers), renamed to its final name only when verified."""

from __future__ import annotations

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
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from .catalog import Entry, destination, url_for

__all__ = ["DownloadError", "download"]

logger = logging.getLogger(__name__)

_TIMEOUT = 30.0  # seconds without a byte before a connection counts as lost
_CHUNK = 1 << 16


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
    from ..errors import ModelError

    try:
        if entry.arch == "ifnet":
            return _rife_kind(path, entry)
        from ..arch import registry
        from ..weights import pth

        found = registry.detect(pth.load(path)).id
    except ModelError as err:
        raise DownloadError(f"the file does not load as {entry.family} weights: {err}") from err
    if found != entry.arch:
        raise DownloadError(f"the file holds {found} weights, not {entry.arch}")
    return found


def _rife_kind(path: Path, entry: Entry) -> str:
    from ..arch import ifnet
    from ..errors import ModelError
    from ..weights import rife

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
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    dest = destination(entry.family, entry.name)
    say = report or (lambda line: logger.info("%s", line))
    url = url_for(entry, base_url)
    part = dest.with_name(dest.name + ".part")
    by_hand = f"download {entry.url} yourself and save it as {dest}"
    if dest.is_file() and not force:
        try:
            _check_digest(dest, entry)
            if entry.sha256 is None or len(entry.sha256) < 64:  # no full hash: the file must also load
                _check_loads(dest, entry)
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
