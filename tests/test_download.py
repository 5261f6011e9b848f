"""`vssr download` against a real HTTP server on 127.0.0.1 (stdlib http.server, with Range support)
serving small real weights files (torch checkpoints written without torch), so that the
verification by loading is the real one: full download, a download cut half way and resumed with a
Range request, a server that ignores Range, bad hashes, a 404, no server at all, files that do not
load, and the `python -m vssr download` command line in a subprocess."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tests.arch import edvr_numpy, ifnet_numpy
from tests.arch.test_compact import random_state as compact_state
from tests.weights.torchsave import Tensor, save_zip
from vssr import download as dl
from vssr.arch import ifnet
from vssr.download import fetch

ROOT = Path(__file__).resolve().parents[1]


# --- a local server --------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        state = self.server
        state.requests.append((self.path, self.headers.get("Range")))
        if state.hang_ups:  # close the connection without an answer
            state.hang_ups -= 1
            self.close_connection = True
            return
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and state.ranges:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", state.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = state.drop_after.pop(self.path, None)
        if cut is not None:  # send part of the body, then drop the connection
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: dict[str, int] = {}
        """path -> bytes sent before the connection is dropped (once)."""
        self.ranges = True
        self.hang_ups = 0
        """How many requests get no answer at all (the connection is closed)."""
        self.content_type = "application/octet-stream"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@contextlib.contextmanager
def serving() -> Iterator[Server]:
    """A Server answering on 127.0.0.1 until the block ends."""
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("VSSR_MODEL_DIR", os.fspath(folder))
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    return folder


# --- small real weights files ----------------------------------------------------------------------


def rife_bytes(tmp: Path, name: str) -> bytes:
    """A flownet.pkl as Practical-RIFE saves it, with random weights of version `name`."""
    v = ifnet.VERSIONS[name]
    state = ifnet_numpy.random_state(v.channels, v.encoder, v.head, v.feat, seed=1)
    path = save_zip(OrderedDict((f"module.{k}", Tensor.of(a)) for k, a in state.items()), tmp / f"{name}.pkl")
    return path.read_bytes()


def pth_bytes(tmp: Path, state: dict[str, np.ndarray]) -> bytes:
    """A BasicSR/Real-ESRGAN style checkpoint: {"params": state dict}."""
    path = save_zip({"params": OrderedDict((k, Tensor.of(v, parameter=True)) for k, v in state.items())},
                    tmp / "weights.pth")
    return path.read_bytes()


@pytest.fixture(scope="module")
def rife_lite(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return rife_bytes(tmp_path_factory.mktemp("rife"), "4.22-lite")


@pytest.fixture(scope="module")
def compact_pth(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return pth_bytes(tmp_path_factory.mktemp("compact"), compact_state(3, 8, 2, 4))


@pytest.fixture(scope="module")
def edvr_pth(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return pth_bytes(tmp_path_factory.mktemp("edvr"), edvr_numpy.random_state(num_feat=16))


def with_hash(entry: dl.Entry, data: bytes) -> dl.Entry:
    """The catalog entry, with the hash and size of our small stand-in file."""
    return dataclasses.replace(entry, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def contents(folder: Path) -> list[str]:
    return sorted(os.fspath(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- the table --------------------------------------------------------------------------------------


def test_table_names_destinations_and_hashes(models: Path) -> None:
    keys = [(e.family, e.name) for e in dl.CATALOG]
    assert len(keys) == len(set(keys))
    assert {e.family for e in dl.CATALOG} == set(dl.FAMILIES)
    assert len([e for e in dl.CATALOG if e.family == "rife"]) == 36  # vs-rife 5.7.0's model list
    assert len([e for e in dl.CATALOG if e.family == "edvr"]) == 5
    assert len([e for e in dl.CATALOG if e.family == "realesrgan"]) == 6
    for entry in dl.CATALOG:
        assert entry.url.startswith("https://"), entry
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{8}|[0-9a-f]{64}", entry.sha256), entry
        assert dl.destination(entry.family, entry.name).parent == models / entry.family
        assert dl.url_for(entry, "http://mirror/x/") == f"http://mirror/x/{entry.file}"
    for entry in dl.CATALOG:
        if entry.family == "edvr":  # BasicSR names carry the first 8 hex digits of the sha256
            assert entry.file.endswith(f"-{entry.sha256}.pth")
    # vssr.RIFE(model="4.22") reads exactly where `vssr download rife 4.22` writes
    for version in ifnet.VERSIONS:
        assert dl.destination("rife", version) == models / "rife" / f"flownet_v{version}.pkl"
    # vs-rife's and the upstream spellings are accepted
    assert dl.find("rife", "4.22.lite").name == "4.22-lite"
    assert dl.find("rife", "flownet_v4.26.heavy.pkl").name == "4.26-heavy"
    assert dl.find("edvr", "EDVR_M_x4_SR_REDS").name == "m-x4-reds"
    assert dl.find("edvr", "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth").name == "l-deblurcomp-reds"
    assert dl.find("realesrgan", "RealESRGAN_x4plus_anime_6B").name == "x4plus-anime"
    with pytest.raises(KeyError, match="one of: 4.0, 4.1"):
        dl.find("rife", "3.9")


# --- downloads ------------------------------------------------------------------------------------


def test_full_download_verified_by_loading(models: Path, server: Server, rife_lite: bytes) -> None:
    server.files["/flownet_v4.22.lite.pkl"] = rife_lite
    lines: list[str] = []
    path = dl.download(dl.find("rife", "4.22-lite"), base_url=server.url, progress=False, report=lines.append)
    assert path == models / "rife" / "flownet_v4.22-lite.pkl"
    assert path.read_bytes() == rife_lite
    assert contents(models) == ["rife/flownet_v4.22-lite.pkl"]
    assert server.requests == [("/flownet_v4.22.lite.pkl", None)]
    assert "loads as RIFE 4.22-lite" in lines[-1]
    # present: nothing is fetched again
    assert dl.download(dl.find("rife", "4.22-lite"), base_url=server.url, report=lines.append) == path
    assert len(server.requests) == 1 and "already present" in lines[-1]


def test_a_present_file_that_is_not_the_official_one(models: Path, server: Server, compact_pth: bytes) -> None:
    entry = dl.find("realesrgan", "general-x4v3")
    path = models / "realesrgan" / entry.file
    path.parent.mkdir(parents=True)
    path.write_bytes(compact_pth)
    with pytest.raises(dl.DownloadError, match="is present but is not the official file .*--force replaces it"):
        dl.download(entry, base_url=server.url, progress=False)
    assert server.requests == [] and path.read_bytes() == compact_pth
    server.files[f"/{entry.file}"] = compact_pth
    with pytest.raises(dl.DownloadError, match="serves"):  # --force fetches again (and the stand-in is refused)
        dl.download(entry, base_url=server.url, force=True, progress=False)
    assert path.read_bytes() == compact_pth  # the present file is replaced only by a verified one


def test_a_present_file_without_a_known_hash_must_load(models: Path) -> None:
    """Most RIFE releases have no published hash: a file already there is checked by loading it."""
    entry = dl.find("rife", "4.22")
    assert entry.sha256 is None
    path = dl.destination("rife", "4.22")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"no")  # a cut or foreign file under the official name
    with pytest.raises(dl.DownloadError, match="is present but is not the official file"):
        dl.download(entry, progress=False)
    assert path.read_bytes() == b"no"  # left for the user (or --force) to replace


def test_full_download_with_sha256_from_the_mirror_variable(models: Path, server: Server, compact_pth: bytes,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    entry = with_hash(dl.find("realesrgan", "animevideov3"), compact_pth)
    server.files["/realesr-animevideov3.pth"] = compact_pth
    path = dl.download(entry, progress=True)  # the tqdm bar runs too (on pytest's captured stderr)
    assert path == models / "realesrgan" / "realesr-animevideov3.pth"
    assert path.read_bytes() == compact_pth


def test_interrupted_half_way_then_resumed_with_range(models: Path, server: Server, rife_lite: bytes) -> None:
    half = len(rife_lite) // 2
    server.files["/flownet_v4.22.lite.pkl"] = rife_lite
    server.drop_after["/flownet_v4.22.lite.pkl"] = half
    entry = dl.find("rife", "4.22-lite")
    with pytest.raises(dl.DownloadError, match="run the same command again to resume") as err:
        dl.download(entry, base_url=server.url, retries=0, progress=False)
    assert "\n" not in str(err.value)
    assert contents(models) == ["rife/flownet_v4.22-lite.pkl.part"]  # never the final name
    part = models / "rife" / "flownet_v4.22-lite.pkl.part"
    assert part.read_bytes() == rife_lite[:half]

    path = dl.download(entry, base_url=server.url, progress=False)
    assert server.requests == [("/flownet_v4.22.lite.pkl", None), ("/flownet_v4.22.lite.pkl", f"bytes={half}-")]
    assert path.read_bytes() == rife_lite
    assert contents(models) == ["rife/flownet_v4.22-lite.pkl"]


def test_a_dropped_connection_resumes_by_itself_through_a_redirect(models: Path, server: Server,
                                                                   compact_pth: bytes) -> None:
    cut = len(compact_pth) // 3
    server.files["/realesr-general-x4v3.pth"] = compact_pth
    server.drop_after["/realesr-general-x4v3.pth"] = cut
    entry = with_hash(dl.find("realesrgan", "general-x4v3"), compact_pth)
    path = dl.download(entry, base_url=server.url + "redirect", retries=1, retry_delay=0, progress=False)
    assert path.read_bytes() == compact_pth
    assert server.requests == [("/redirect/realesr-general-x4v3.pth", None), ("/realesr-general-x4v3.pth", None),
                               ("/redirect/realesr-general-x4v3.pth", f"bytes={cut}-"),
                               ("/realesr-general-x4v3.pth", f"bytes={cut}-")]


def test_a_server_without_range_support_restarts(models: Path, server: Server, compact_pth: bytes) -> None:
    server.ranges = False
    server.files["/realesr-animevideov3.pth"] = compact_pth
    part = models / "realesrgan" / "realesr-animevideov3.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 1000)  # would corrupt the file if the 200 body were appended to it
    entry = with_hash(dl.find("realesrgan", "animevideov3"), compact_pth)
    path = dl.download(entry, base_url=server.url, progress=False)
    assert server.requests == [("/realesr-animevideov3.pth", "bytes=1000-")]
    assert path.read_bytes() == compact_pth
    assert contents(models) == ["realesrgan/realesr-animevideov3.pth"]


def test_a_whole_part_file_is_verified_without_fetching_again(models: Path, server: Server,
                                                              compact_pth: bytes) -> None:
    server.files["/realesr-animevideov3.pth"] = compact_pth
    part = models / "realesrgan" / "realesr-animevideov3.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(compact_pth)  # interrupted after the last byte, before the rename
    path = dl.download(with_hash(dl.find("realesrgan", "animevideov3"), compact_pth), base_url=server.url,
                       progress=False)
    assert server.requests == [("/realesr-animevideov3.pth", f"bytes={len(compact_pth)}-")]  # answered 416
    assert path.read_bytes() == compact_pth


def test_a_part_file_in_use_by_another_download_is_left_alone(models: Path, server: Server,
                                                              compact_pth: bytes) -> None:
    import fcntl

    server.files["/realesr-animevideov3.pth"] = compact_pth
    part = models / "realesrgan" / "realesr-animevideov3.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(compact_pth)
    entry = with_hash(dl.find("realesrgan", "animevideov3"), compact_pth)
    with open(part, "ab") as other:  # another process holds the lock (flock locks are per open file)
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(dl.DownloadError, match="another process is downloading"):
            dl.download(entry, base_url=server.url, progress=False)
    assert part.read_bytes() == compact_pth and not (models / "realesrgan" / entry.file).exists()


def test_bad_hash_is_rejected_and_nothing_is_left(models: Path, server: Server, edvr_pth: bytes) -> None:
    # a real EDVR checkpoint, but not the official one: the 8-hex prefix in BasicSR's name differs
    entry = dl.find("edvr", "m-x4-reds")
    server.files[f"/{entry.file}"] = edvr_pth
    with pytest.raises(dl.DownloadError) as err:
        dl.download(entry, base_url=server.url, progress=False)
    message = str(err.value)
    assert "sha256 mismatch" in message and "32075921" in message
    assert f"save it as {models / 'edvr' / entry.file}" in message
    assert contents(models) == []


def test_size_differing_from_the_table_is_refused_before_downloading(models: Path, server: Server,
                                                                     compact_pth: bytes) -> None:
    server.files["/RealESRGAN_x4plus.pth"] = compact_pth
    with pytest.raises(dl.DownloadError, match=f"serves {len(compact_pth)} bytes where .* has 67040989"):
        dl.download(dl.find("realesrgan", "x4plus"), base_url=server.url, progress=False)
    assert contents(models) == []


def test_404(models: Path, server: Server) -> None:
    with pytest.raises(dl.DownloadError, match=r"HTTP 404 .*flownet_v4\.22\.pkl.*save it as .*flownet_v4\.22\.pkl"):
        dl.download(dl.find("rife", "4.22"), base_url=server.url, progress=False)
    assert contents(models) == []


def test_no_server_at_all(models: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(dl.DownloadError, match=f"connection to 127.0.0.1:{port} refused.*save it as"):
        dl.download(dl.find("rife", "4.26"), base_url=f"http://127.0.0.1:{port}", progress=False)
    assert contents(models) == []


def test_no_answer_is_retried_then_reported(models: Path, server: Server, compact_pth: bytes,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/realesr-animevideov3.pth"] = compact_pth
    entry = with_hash(dl.find("realesrgan", "animevideov3"), compact_pth)
    server.hang_ups = 1
    assert dl.download(entry, base_url=server.url, retries=1, retry_delay=0, progress=False).is_file()
    assert len(server.requests) == 2

    monkeypatch.setattr(fetch, "_TIMEOUT", 0.2)
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(dl.DownloadError, match=r"did not answer within 0.2 s; download https://github.com"):
            dl.download(dl.find("rife", "4.26"), base_url=url, retries=1, retry_delay=0, progress=False)
    assert contents(models) == ["realesrgan/realesr-animevideov3.pth"]


def test_a_web_page_instead_of_the_file(models: Path, server: Server) -> None:
    server.content_type = "text/html; charset=utf-8"
    server.files["/EDVR_L_x4_SR_REDS_official-9f5f5039.pth"] = b"<html>Google Drive - quota exceeded</html>"
    with pytest.raises(dl.DownloadError, match="sent a web page"):
        dl.download(dl.find("edvr", "l-x4-reds"), base_url=server.url, progress=False)
    assert contents(models) == []


@pytest.mark.parametrize(("family", "name", "served", "message"), [
    ("rife", "4.22", "garbage", "does not load as rife weights"),
    ("rife", "4.22", "rife 4.22-lite", "the weights are RIFE 4.22-lite, not 4.22"),
    ("realesrgan", "x4plus", "compact", "holds compact weights, not rrdb"),
    ("edvr", "l-deblur-reds", "compact", "holds compact weights, not edvr"),
])
def test_files_that_do_not_load_as_the_entry_are_refused(models: Path, server: Server, rife_lite: bytes,
                                                         compact_pth: bytes, family: str, name: str, served: str,
                                                         message: str) -> None:
    data = {"garbage": os.urandom(5000), "rife 4.22-lite": rife_lite, "compact": compact_pth}[served]
    entry = dataclasses.replace(dl.find(family, name), sha256=None, size=None)  # only loading can tell
    server.files[f"/{entry.file}"] = data
    with pytest.raises(dl.DownloadError, match=message):
        dl.download(entry, base_url=server.url, progress=False)
    assert contents(models) == []


# --- the command line ------------------------------------------------------------------------------


def run_cli(*args: str, models: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VSSR_MODEL_DIR": os.fspath(models), "PYTHONPATH": os.fspath(ROOT)}
    env.pop(dl.MIRROR_ENV, None)
    return subprocess.run([sys.executable, "-m", "vssr", "download", *args], check=False, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_command_line(models: Path, server: Server, rife_lite: bytes, edvr_pth: bytes) -> None:
    server.files["/flownet_v4.22.lite.pkl"] = rife_lite
    done = run_cli("rife", "4.22.lite", "--url", server.url, models=models)
    assert done.returncode == 0, done.stderr
    assert (models / "rife" / "flownet_v4.22-lite.pkl").read_bytes() == rife_lite
    assert "saved" in done.stdout and "loads as RIFE 4.22-lite" in done.stdout


    entry = dl.find("edvr", "m-x4-reds")
    server.files[f"/{entry.file}"] = edvr_pth  # not the official file: its sha256 prefix differs
    failed = run_cli("edvr", "m-x4-reds", "--url", server.url, models=models)
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vssr download: edvr m-x4-reds: sha256 mismatch"), failed.stderr
    assert os.fspath(models / "edvr" / entry.file) in lines[0]
    assert contents(models) == ["rife/flownet_v4.22-lite.pkl"]



def test_command_line_list_and_usage_errors(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vssr.cli import main

    part = models / "rife" / "flownet_v4.26.pkl.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 3 * 2**20)
    (models / "rife" / "flownet_v4.22-lite.pkl").write_bytes(b"placed by hand")
    assert main(["download", "--list", "rife"]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"rife\s+4\.22-lite\s+flownet_v4\.22\.lite\.pkl\s+load only\s+present", listed)
    assert re.search(r"rife\s+4\.26\s+flownet_v4\.26\.pkl\s+sha256\s+partial \(3\.0 MiB; run again", listed)
    assert re.search(r"rife\s+4\.25\s+flownet_v4\.25\.pkl\s+sha256\s+-", listed)
    assert "edvr" not in listed
    assert main(["download", "realesrgan", "x8plus"]) == 2
    assert "one of: x4plus, x2plus" in capsys.readouterr().err
    assert main(["download", "edvr"]) == 2
    assert "vssr download --list" in capsys.readouterr().err
    assert main(["download", "edvr", "all", "--retries", "-1"]) == 2
    assert "--retries must be >= 0" in capsys.readouterr().err


def test_rife_model_by_version_names_the_command(models: Path) -> None:
    import vapoursynth as vs

    import vssr

    clip = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=64, length=2)
    with pytest.raises(vs.Error, match=r"looked for flownet_v4\.22\.pkl.*`vssr download rife 4\.22` fetches them"):
        vssr.RIFE(clip, model="4.22", multi=2)


def test_the_documented_table_is_the_catalog() -> None:
    doc = (ROOT / "docs" / "download.md").read_text()
    rows = [line for line in doc.splitlines() if re.match(r"\| (rife|edvr|realesrgan) \| [^|]+ \| [^|]+ \| http", line)]
    assert len(rows) == len(dl.CATALOG)
    for row, entry in zip(rows, dl.CATALOG, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[:4] == [entry.family, entry.name, entry.file, entry.url]
        assert cells[4].split()[0] == (entry.sha256 or "(none")
