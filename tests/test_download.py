"""Tests for tfrs_course.data.download against a real HTTP server on 127.0.0.1.

No network mocks: each test starts a ``ThreadingHTTPServer`` on a free local
port whose handler misbehaves on purpose (truncates, stalls, flips a byte,
answers 404/500), and checks that the downloader fails cleanly: the right
error, and no file left in the cache folder, not even a temporary one.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tfrs_course.data import download
from tfrs_course.data.download import (
    BASE_URL_VARIABLE,
    DEFAULT_BASE_URL,
    REAL_FILES,
    ChecksumMismatchError,
    DownloadError,
    RemoteFile,
    fetch_file,
    fetch_real_data,
    git_blob_id,
    real_cache_dir,
    real_cache_status,
    verify_file,
)
from tfrs_course.data.schema import FILE_NAMES

# Values copied from shared/babyshop/README.md; a test below also parses the README.
README_BLOB_IDS = {
    "item_info.csv": "e27ed410e5819b560daaef40eea80ceb14f41552",
    "user_info.csv": "c5a879ab88b6771bdaa82e6a8ea8cab5f4af01e5",
    "train.csv": "1071090ce1d1cb52ff125f5be3fbcf5b4679cea2",
    "test.csv": "cc04cbaa9922edcbd39632c4462b0dd5cb7de2c8",
}
README_SIZES = {"item_info.csv": 3826761, "user_info.csv": 1089689}

# Small limits so that failure cases finish in a fraction of a second.
TIMEOUT = 0.5
FAST = {"timeout": TIMEOUT, "progress": False, "backoff": 0.01}


# --- a small, scriptable HTTP server ----------------------------------------------------------

# A response is a function that writes to the handler: status, headers and body.
Response = Callable[[BaseHTTPRequestHandler], None]


def ok(body: bytes) -> Response:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def status(code: int) -> Response:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_error(code)

    return respond


def _send_part(handler: BaseHTTPRequestHandler, body: bytes, sent: int) -> None:
    """Announce the whole body, then send only its first ``sent`` bytes."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[:sent])
    handler.wfile.flush()


def truncated(body: bytes, sent: int) -> Response:
    """Announce the whole body, send only ``sent`` bytes, then close the connection."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        _send_part(handler, body, sent)
        handler.close_connection = True

    return respond


def stalled(body: bytes, sent: int, release: threading.Event) -> Response:
    """Send headers and ``sent`` bytes, then go silent until ``release`` is set."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        _send_part(handler, body, sent)
        release.wait(10)
        handler.close_connection = True

    return respond


class FileServer:
    """Serves scripted responses per path and records every request path.

    ``script(name, first, second, ...)``: the n-th request for ``/name`` gets the
    n-th response; once the list is used up the last response repeats.
    """

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.scripts: dict[str, list[Response]] = {}
        self.release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                with server._lock:
                    server.requests.append(self.path)
                    responses = server.scripts.get(self.path.lstrip("/"), [status(404)])
                    respond = responses.pop(0) if len(responses) > 1 else responses[0]
                try:
                    respond(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test): expected

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output quiet

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def script(self, name: str, *responses: Response) -> None:
        self.scripts[name] = list(responses)

    def close(self) -> None:
        self.release.set()  # wake any stalled handler so its thread ends
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[FileServer]:
    file_server = FileServer()
    yield file_server
    file_server.close()


def blob_id_of(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


SMALL = b"user_no,country,aov,avg_markdown\n1,sweden,10.5,-0.2\n2,sweden,99.0,0.0\n" * 50
SMALL_REMOTE = RemoteFile("users", "user_info.csv", blob_id_of(SMALL), len(SMALL))


def assert_nothing_left(folder: Path) -> None:
    leftovers = sorted(path.name for path in folder.iterdir()) if folder.exists() else []
    assert leftovers == [], f"files left behind after a failed download: {leftovers}"


# --- the real files ----------------------------------------------------------------------------


def test_git_blob_id_of_real_files_matches_readme(babyshop_dir: Path) -> None:
    for name, blob_id in README_BLOB_IDS.items():
        if name in README_SIZES:
            assert git_blob_id(babyshop_dir / name) == blob_id
            assert (babyshop_dir / name).stat().st_size == README_SIZES[name]


def test_real_files_table_matches_readme(babyshop_dir: Path) -> None:
    # Parse the README's integrity table so a typo in REAL_FILES cannot hide.
    readme = (babyshop_dir / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ([\w.]+\.csv) \| ([0-9a-f]{40}) \|", readme, flags=re.M))
    assert set(REAL_FILES) == {"train", "test", "items", "users"}
    for table, remote in REAL_FILES.items():
        assert remote.table == table
        assert remote.file_name == FILE_NAMES[table]
        assert remote.blob_id == rows[remote.file_name] == README_BLOB_IDS[remote.file_name]
        assert remote.size == README_SIZES.get(remote.file_name)


def test_fetch_real_files_verifies_and_second_call_is_a_cache_hit(
    server: FileServer, babyshop_dir: Path, tmp_path: Path
) -> None:
    for table in ("items", "users"):
        name = FILE_NAMES[table]
        server.script(name, ok((babyshop_dir / name).read_bytes()))

    paths = fetch_real_data(tmp_path, server.url, tables=("items", "users"), **FAST)

    assert paths == {
        "items": tmp_path / "real" / "item_info.csv",
        "users": tmp_path / "real" / "user_info.csv",
    }
    for table, path in paths.items():
        assert git_blob_id(path) == README_BLOB_IDS[FILE_NAMES[table]]
        assert path.read_bytes() == (babyshop_dir / path.name).read_bytes()
    assert sorted(server.requests) == ["/item_info.csv", "/user_info.csv"]
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        "item_info.csv",
        "user_info.csv",
    ]
    status_now = real_cache_status(tmp_path)
    assert status_now == {
        "train": "missing",
        "test": "missing",
        "items": "verified",
        "users": "verified",
    }

    modified = {table: path.stat().st_mtime_ns for table, path in paths.items()}
    server.requests.clear()
    again = fetch_real_data(tmp_path, server.url, tables=("items", "users"), **FAST)
    assert again == paths
    assert server.requests == [], "a verified cached file must not be downloaded again"
    assert {table: path.stat().st_mtime_ns for table, path in again.items()} == modified


def test_progress_bar_is_shown_when_asked(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.script("user_info.csv", ok(SMALL))
    fetch_file(SMALL_REMOTE, tmp_path, server.url, timeout=TIMEOUT, progress=True)
    assert "user_info.csv" in capsys.readouterr().err


def test_progress_false_prints_nothing(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.script("user_info.csv", ok(SMALL))
    fetch_file(SMALL_REMOTE, tmp_path, server.url, **FAST)
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


# --- failures leave nothing behind -------------------------------------------------------------


def test_truncated_body_is_a_download_error_and_is_retried(server: FileServer, tmp_path: Path) -> None:
    server.script("user_info.csv", truncated(SMALL, len(SMALL) // 2))
    with pytest.raises(DownloadError) as caught:
        fetch_file(SMALL_REMOTE, tmp_path, server.url, retries=2, **FAST)
    assert not isinstance(caught.value, ChecksumMismatchError)
    message = str(caught.value)
    assert "user_info.csv" in message and f"{server.url}/user_info.csv" in message
    assert "3 attempt" in message
    assert len(server.requests) == 3, "retries=2 means exactly three requests"
    assert_nothing_left(tmp_path)


def test_one_flipped_byte_is_a_checksum_mismatch_naming_both_hashes(server: FileServer, tmp_path: Path) -> None:
    corrupted = bytearray(SMALL)
    corrupted[100] ^= 0x01
    server.script("user_info.csv", ok(bytes(corrupted)))

    with pytest.raises(ChecksumMismatchError) as caught:
        fetch_file(SMALL_REMOTE, tmp_path, server.url, **FAST)

    message = str(caught.value)
    assert "user_info.csv" in message
    assert SMALL_REMOTE.blob_id in message
    assert blob_id_of(bytes(corrupted)) in message
    assert caught.value.expected == SMALL_REMOTE.blob_id
    assert caught.value.actual == blob_id_of(bytes(corrupted))
    assert len(server.requests) == 1, "the same wrong bytes would come again: no retry"
    assert_nothing_left(tmp_path)


def test_a_stalled_server_times_out(server: FileServer, tmp_path: Path) -> None:
    server.script("user_info.csv", stalled(SMALL, 100, server.release))
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as caught:
        fetch_file(SMALL_REMOTE, tmp_path, server.url, retries=0, **FAST)
    elapsed = time.monotonic() - started
    assert elapsed < 5 * TIMEOUT, f"took {elapsed:.1f} s with a {TIMEOUT} s timeout"
    assert "user_info.csv" in str(caught.value)
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("code", [404, 403])
def test_http_client_errors_fail_at_once(server: FileServer, tmp_path: Path, code: int) -> None:
    server.script("user_info.csv", status(code))
    with pytest.raises(DownloadError, match=f"HTTP {code}") as caught:
        fetch_file(SMALL_REMOTE, tmp_path, server.url, retries=3, **FAST)
    assert f"{server.url}/user_info.csv" in str(caught.value)
    assert len(server.requests) == 1, "a 4xx answer is not retried"
    assert_nothing_left(tmp_path)


def test_http_500_fails_after_the_retries(server: FileServer, tmp_path: Path) -> None:
    server.script("user_info.csv", status(500))
    with pytest.raises(DownloadError, match="HTTP 500") as caught:
        fetch_file(SMALL_REMOTE, tmp_path, server.url, retries=1, **FAST)
    assert f"{server.url}/user_info.csv" in str(caught.value)
    assert len(server.requests) == 2
    assert_nothing_left(tmp_path)


def test_a_retry_succeeds_after_a_500(server: FileServer, tmp_path: Path) -> None:
    server.script("user_info.csv", status(500), ok(SMALL))
    path = fetch_file(SMALL_REMOTE, tmp_path, server.url, retries=1, **FAST)
    assert path == tmp_path / "user_info.csv"
    assert path.read_bytes() == SMALL
    assert server.requests == ["/user_info.csv", "/user_info.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user_info.csv"]


def test_a_retry_succeeds_after_a_truncated_body(server: FileServer, tmp_path: Path) -> None:
    server.script("user_info.csv", truncated(SMALL, 10), ok(SMALL))
    path = fetch_file(SMALL_REMOTE, tmp_path, server.url, retries=1, **FAST)
    assert path.read_bytes() == SMALL
    assert len(server.requests) == 2


def test_connection_refused_is_a_download_error(tmp_path: Path) -> None:
    # Take a free port and close it again: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(DownloadError) as caught:
        fetch_file(SMALL_REMOTE, tmp_path, url, retries=1, **FAST)
    assert f"{url}/user_info.csv" in str(caught.value)
    assert "2 attempt" in str(caught.value)
    assert_nothing_left(tmp_path)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_during_a_download_leaves_no_partial_file(server: FileServer, tmp_path: Path) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    server.script("user_info.csv", stalled(SMALL, 100, server.release))
    # A process started in the background may inherit "ignore SIGINT"; make
    # sure Ctrl-C raises KeyboardInterrupt here, as it does in a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # A real SIGINT to this thread, while it waits for the stalled body.
    timer = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fetch_file(SMALL_REMOTE, tmp_path, server.url, timeout=5.0, progress=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert_nothing_left(tmp_path)


# --- the cache ---------------------------------------------------------------------------------


def test_a_verified_cached_file_is_a_cache_hit(server: FileServer, tmp_path: Path) -> None:
    server.script("user_info.csv", ok(SMALL))
    first = fetch_file(SMALL_REMOTE, tmp_path, server.url, **FAST)
    modified = first.stat().st_mtime_ns
    second = fetch_file(SMALL_REMOTE, tmp_path, server.url, **FAST)
    assert second == first and second.stat().st_mtime_ns == modified
    assert server.requests == ["/user_info.csv"], "the second call must not ask the server"


def test_a_corrupted_cached_file_is_not_a_cache_hit(server: FileServer, tmp_path: Path) -> None:
    cached = tmp_path / "user_info.csv"
    cached.write_bytes(SMALL[:-1] + b"X")
    server.script("user_info.csv", ok(SMALL))

    path = fetch_file(SMALL_REMOTE, tmp_path, server.url, **FAST)

    assert server.requests == ["/user_info.csv"]
    assert path == cached and cached.read_bytes() == SMALL


def test_a_corrupted_cached_file_is_removed_when_the_download_fails(server: FileServer, tmp_path: Path) -> None:
    cache = real_cache_dir(tmp_path)
    cache.mkdir()
    cached = cache / "user_info.csv"
    cached.write_bytes(b"not the real file\n")
    assert real_cache_status(tmp_path)["users"].startswith("invalid: ")

    server.script("user_info.csv", status(404))
    with pytest.raises(DownloadError):
        fetch_real_data(tmp_path, server.url, tables=("users",), **FAST)

    assert not cached.exists(), "a file that failed verification must not stay under its name"
    assert real_cache_status(tmp_path)["users"] == "missing"


def test_real_cache_status_reports_each_case(babyshop_dir: Path, tmp_path: Path) -> None:
    cache = real_cache_dir(tmp_path)
    assert cache == tmp_path / "real"
    cache.mkdir()
    (cache / "item_info.csv").write_bytes((babyshop_dir / "item_info.csv").read_bytes())
    (cache / "user_info.csv").write_bytes(b"user_no\n")
    (cache / "test.csv").mkdir()

    status_now = real_cache_status(tmp_path)

    assert status_now["items"] == "verified"
    assert status_now["train"] == "missing"
    assert status_now["test"] == "invalid: not a regular file"
    assert status_now["users"].startswith("invalid: ")
    assert REAL_FILES["users"].blob_id in status_now["users"]
    assert blob_id_of(b"user_no\n") in status_now["users"]


def test_real_cache_status_uses_the_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFRS_COURSE_DATA_DIR", str(tmp_path))
    assert real_cache_status() == dict.fromkeys(REAL_FILES, "missing")


# --- verify_file, git_blob_id, the base URL ------------------------------------------------------


def test_verify_file(tmp_path: Path) -> None:
    path = tmp_path / "user_info.csv"
    path.write_bytes(SMALL)
    verify_file(path, SMALL_REMOTE)  # does not raise
    path.write_bytes(SMALL + b"\n")
    with pytest.raises(ChecksumMismatchError) as caught:
        verify_file(path, SMALL_REMOTE)
    message = str(caught.value)
    assert "user_info.csv" in message
    assert SMALL_REMOTE.blob_id in message and blob_id_of(SMALL + b"\n") in message
    with pytest.raises(FileNotFoundError):
        verify_file(tmp_path / "absent.csv", SMALL_REMOTE)


def test_git_blob_id_matches_git(tmp_path: Path) -> None:
    # Known values from `git hash-object`.
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert git_blob_id(empty) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    hello = tmp_path / "hello"
    hello.write_bytes(b"hello\n")
    assert git_blob_id(hello) == "ce013625030ba8dba906f756967f9e9ca394464a"
    # Bigger than one read chunk, so the streaming loop runs several times.
    big = tmp_path / "big"
    data = os.urandom(download.CHUNK_SIZE * 2 + 12345)
    big.write_bytes(data)
    assert git_blob_id(big) == blob_id_of(data)


def test_base_url_argument_then_variable_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_VARIABLE, raising=False)
    assert download.resolve_base_url() == DEFAULT_BASE_URL
    monkeypatch.setenv(BASE_URL_VARIABLE, "http://mirror.example/babyshop/")
    assert download.resolve_base_url() == "http://mirror.example/babyshop"
    assert download.resolve_base_url("http://other.example//") == "http://other.example"
    # The variable is a plain string: nothing in it is evaluated.
    monkeypatch.setenv(BASE_URL_VARIABLE, "__import__('os').getcwd()")
    assert download.resolve_base_url() == "__import__('os').getcwd()"


def test_base_url_from_the_environment_is_used(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BASE_URL_VARIABLE, server.url + "/")
    server.script("user_info.csv", ok(SMALL))
    fetch_file(SMALL_REMOTE, tmp_path, **FAST)
    assert server.requests == ["/user_info.csv"]


def test_a_file_url_works_as_a_local_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "user_info.csv").write_bytes(SMALL)
    path = fetch_file(SMALL_REMOTE, tmp_path / "cache", mirror.as_uri(), **FAST)
    assert path.read_bytes() == SMALL


def test_a_bad_base_url_is_a_download_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="bad URL"):
        fetch_file(SMALL_REMOTE, tmp_path, "no-scheme/here", **FAST)
    assert_nothing_left(tmp_path)


def test_unknown_table_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        fetch_real_data(tmp_path, "http://127.0.0.1:9", tables=("events",), **FAST)
