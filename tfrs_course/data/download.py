"""Download the real Babyshop files, safely, and check that they are the right bytes.

The four CSV files live in the public ``msvensson222/tfrs-retail-example``
repository. We know each file's *git blob id* (the hash git itself uses for a
file), so a download can be checked without trusting the network: if the bytes
hash to the published id they are exactly the published file.

How a download works (:func:`fetch_file`):

1. If the file is already in the cache and verifies, use it (a *cache hit*).
   A cached file that does not verify is deleted, then downloaded again.
2. Stream the response into a temporary file next to the final one, named
   ``.<file>.partial-<random>``, showing a tqdm progress bar.
3. Check the byte count against ``Content-Length``, then the git blob id.
4. Only then rename the temporary file to its final name with ``os.replace``,
   which is atomic: other code sees either no file or the complete, verified one.

If anything goes wrong (network error, timeout, HTTP error, truncated body, wrong
bytes, even Ctrl-C) the temporary file is removed and no file with the final
name is created. Network failures are retried a few times with a short pause.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from tfrs_course.data.schema import FILE_NAMES
from tfrs_course.paths import default_data_dir

BASE_URL_VARIABLE = "TFRS_COURSE_BASE_URL"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com/msvensson222/tfrs-retail-example/master"

# Read and hash in 1 MiB pieces, so memory use does not grow with the file.
CHUNK_SIZE = 1024 * 1024
# HTTP statuses that mean "try again later"; any other error status is final
# (a 404 will still be a 404 in a second).
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "tfrs-course (+https://github.com/msvensson222/tfrs-retail-example)"


@dataclass(frozen=True)
class RemoteFile:
    """One file to download and how to recognise it.

    Attributes:
        table: the table it holds: ``"train"``, ``"test"``, ``"items"`` or ``"users"``.
        file_name: its name in the repository and in the cache, e.g. ``"item_info.csv"``.
        blob_id: its git blob id: the sha1 of ``b"blob <size>\\0"`` followed by the content.
        size: its size in bytes, if known (``None`` otherwise).
    """

    table: str
    file_name: str
    blob_id: str
    size: int | None = None


# The published files (repository commit c0259e37, February 2022). The blob ids
# are git's own hashes of those files (as in the course's shared/babyshop/README.md).
# The sizes of train.csv and test.csv are not recorded; the blob id alone decides.
REAL_FILES: dict[str, RemoteFile] = {
    "train": RemoteFile("train", FILE_NAMES["train"], "1071090ce1d1cb52ff125f5be3fbcf5b4679cea2"),
    "test": RemoteFile("test", FILE_NAMES["test"], "cc04cbaa9922edcbd39632c4462b0dd5cb7de2c8"),
    "items": RemoteFile(
        "items", FILE_NAMES["items"], "e27ed410e5819b560daaef40eea80ceb14f41552", 3826761
    ),
    "users": RemoteFile(
        "users", FILE_NAMES["users"], "c5a879ab88b6771bdaa82e6a8ea8cab5f4af01e5", 1089689
    ),
}


class DownloadError(RuntimeError):
    """A file could not be downloaded: network failure after retries, an HTTP
    error, a stalled or truncated transfer, or content that does not verify."""


class ChecksumMismatchError(DownloadError):
    """A file's bytes do not hash to the expected git blob id.

    Attributes:
        path: the file that was checked (``None`` if not given).
        expected: the git blob id it should have.
        actual: the git blob id it has.
    """

    # Keyword-only extras keep the exception picklable (pickle re-creates it
    # from the message alone).
    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


def git_blob_id(path: str | os.PathLike[str]) -> str:
    """Hash a file the way git does (``git hash-object``), reading it in chunks.

    Args:
        path: the file.

    Returns:
        The 40-character hex sha1 of ``b"blob <size>\\0"`` followed by the content.

    Raises:
        OSError: the file cannot be read, or it changed size while being read.
    """
    with open(path, "rb") as handle:
        # git puts the size in front of the content, so we need it before hashing.
        size = os.fstat(handle.fileno()).st_size
        digest = hashlib.sha1(f"blob {size}\0".encode("ascii"))
        read = 0
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            read += len(chunk)
    if read != size:
        raise OSError(f"{path} changed size while it was being hashed ({size} -> {read} bytes)")
    return digest.hexdigest()


def real_cache_dir(data_dir: str | os.PathLike[str]) -> Path:
    """The folder the real files are cached in: ``<data_dir>/real``.

    Args:
        data_dir: the course's data folder (see :func:`tfrs_course.paths.default_data_dir`).

    Returns:
        ``data_dir / "real"`` (not created here).
    """
    return Path(data_dir) / "real"


def resolve_base_url(base_url: str | None = None) -> str:
    """Choose where to download from.

    Args:
        base_url: an explicit URL; ``None`` or empty means "not given".

    Returns:
        ``base_url`` if given, else ``$TFRS_COURSE_BASE_URL`` if set, else
        :data:`DEFAULT_BASE_URL`; without a trailing slash. The environment value
        is used as a plain string. ``file://`` URLs work too (a local mirror).
    """
    for candidate in (base_url, os.environ.get(BASE_URL_VARIABLE)):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    return DEFAULT_BASE_URL


def verify_file(path: str | os.PathLike[str], remote: RemoteFile) -> None:
    """Check that a file holds exactly the expected bytes.

    Args:
        path: the file to check.
        remote: what it should be (its ``blob_id``, and ``size`` if known).

    Raises:
        ChecksumMismatchError: the file's git blob id is not ``remote.blob_id``;
            the message names the file and both ids.
        OSError: the file cannot be read (``FileNotFoundError`` if it is missing).
    """
    path = Path(path)
    actual = git_blob_id(path)
    if actual != remote.blob_id:
        raise _mismatch(remote, path, actual, f"{remote.file_name} at {path}")


def fetch_file(
    remote: RemoteFile,
    destination_dir: str | os.PathLike[str],
    base_url: str | None = None,
    *,
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = True,
    backoff: float = 1.0,
) -> Path:
    """Download one file into a folder and verify it, unless a verified copy is there.

    Args:
        remote: the file to fetch.
        destination_dir: the folder to put it in (created if missing).
        base_url: where to download from; see :func:`resolve_base_url`.
        timeout: seconds to wait for the server on each network operation
            (connecting, or any single read). A server that stops sending in the
            middle of the body fails after this long. It does not limit the
            total time of a slow but steady download.
        retries: how many more times to try after a failed attempt, so at most
            ``retries + 1`` requests. Only failures that may pass are retried:
            network errors, timeouts, truncated bodies and HTTP 408/425/429/5xx.
        progress: show a progress bar (tqdm, on stderr).
        backoff: seconds to wait before the first retry; doubled for each next one.

    Returns:
        The path of the verified file: ``destination_dir / remote.file_name``.

    Raises:
        ChecksumMismatchError: the downloaded bytes do not match ``remote.blob_id``
            (not retried: the server would send the same bytes again).
        DownloadError: the download failed (after the retries), naming the URL.

    A cached file that does not verify is deleted before downloading again, so a
    failed re-download leaves the file missing rather than present but wrong.
    On any failure no file with the final name is created and the temporary
    file is removed.
    """
    destination_dir = Path(destination_dir)
    destination = destination_dir / remote.file_name
    if _is_cache_hit(destination, remote):
        return destination

    url = f"{resolve_base_url(base_url)}/{remote.file_name}"
    destination_dir.mkdir(parents=True, exist_ok=True)
    attempts = max(0, retries) + 1
    for attempt in range(1, attempts + 1):
        try:
            _download_once(url, remote, destination, timeout=timeout, progress=progress)
            return destination
        except _RetryableError as error:
            if attempt == attempts:
                raise DownloadError(
                    f"Could not download {remote.file_name} from {url} after {attempts} "
                    f"attempt(s): {error}"
                ) from (error.__cause__ or error)
            # A short, growing pause: give a busy server or a flaky link time to recover.
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable: the loop returns or raises")


def fetch_real_data(
    data_dir: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    *,
    tables: Iterable[str] = ("train", "test", "items", "users"),
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = True,
    backoff: float = 1.0,
) -> dict[str, Path]:
    """Download (or find in the cache) and verify the real Babyshop files.

    Args:
        data_dir: the course's data folder; files go to ``<data_dir>/real``.
            ``None`` means :func:`tfrs_course.paths.default_data_dir`.
        base_url: where to download from; see :func:`resolve_base_url`.
        tables: which tables to fetch, by name (keys of :data:`REAL_FILES`);
            a single name is accepted too.
        timeout, retries, progress, backoff: as for :func:`fetch_file`.

    Returns:
        ``{table: path}`` for each requested table, every file verified.

    Raises:
        ValueError: an unknown table name.
        ChecksumMismatchError, DownloadError: as for :func:`fetch_file`; files
            fetched before the failing one stay in the cache (they are verified).
    """
    tables = [tables] if isinstance(tables, str) else list(tables)
    unknown = [table for table in tables if table not in REAL_FILES]
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; expected some of {list(REAL_FILES)}")
    folder = real_cache_dir(data_dir if data_dir is not None else default_data_dir())
    return {
        table: fetch_file(
            REAL_FILES[table],
            folder,
            base_url,
            timeout=timeout,
            retries=retries,
            progress=progress,
            backoff=backoff,
        )
        for table in tables
    }


def real_cache_status(data_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Say, for each real file, whether a verified copy is cached. Never downloads.

    Args:
        data_dir: the course's data folder; ``None`` means the default one.

    Returns:
        ``{table: status}`` for all four tables, where status is ``"verified"``,
        ``"missing"`` or ``"invalid: <reason>"``.
    """
    folder = real_cache_dir(data_dir if data_dir is not None else default_data_dir())
    status = {}
    for table, remote in REAL_FILES.items():
        path = folder / remote.file_name
        if not path.exists():
            status[table] = "missing"
        elif not path.is_file():
            status[table] = "invalid: not a regular file"
        else:
            try:
                verify_file(path, remote)
                status[table] = "verified"
            except ChecksumMismatchError as error:
                status[table] = f"invalid: git blob id {error.actual}, expected {error.expected}"
            except OSError as error:
                status[table] = f"invalid: cannot be read ({error})"
    return status


class _RetryableError(Exception):
    """Internal: one attempt failed in a way that another attempt might not."""


def _is_cache_hit(destination: Path, remote: RemoteFile) -> bool:
    if not destination.is_file():
        return False
    try:
        verify_file(destination, remote)
        return True
    except ChecksumMismatchError:
        # A wrong file under the final name would look valid to anyone who does
        # not check it, so remove it now rather than after a download that may fail.
        destination.unlink(missing_ok=True)
        return False


def _mismatch(remote: RemoteFile, path: Path, actual: str, what: str) -> ChecksumMismatchError:
    size = path.stat().st_size
    expected_size = f", expected {remote.size:,}" if remote.size is not None else ""
    return ChecksumMismatchError(
        f"{what} does not have the expected content: expected git blob id "
        f"{remote.blob_id}, got {actual} ({size:,} bytes{expected_size})",
        path=path,
        expected=remote.blob_id,
        actual=actual,
    )


def _download_once(
    url: str, remote: RemoteFile, destination: Path, *, timeout: float, progress: bool
) -> None:
    # A random name, opened with "x" (fail if it exists), so two downloads of
    # the same file (two notebooks at once) never write into each other's bytes.
    # The leading dot hides it from `ls`; it sits in the destination folder
    # because os.replace is only atomic within one file system.
    temporary = destination.with_name(f".{remote.file_name}.partial-{secrets.token_hex(6)}")
    try:
        with open(temporary, "xb") as output:
            received, announced = _stream(url, output, remote, timeout=timeout, progress=progress)
            # Make sure the bytes are on disk before the rename makes them "the" file.
            output.flush()
            os.fsync(output.fileno())
        if announced is not None and received != announced:
            raise _RetryableError(f"truncated: received {received:,} of {announced:,} bytes")
        actual = git_blob_id(temporary)
        if actual != remote.blob_id:
            raise _mismatch(remote, temporary, actual, f"{remote.file_name} downloaded from {url}")
        os.replace(temporary, destination)
    finally:
        # BaseException included: after Ctrl-C, too, no partial file is left behind.
        # After a successful os.replace the temporary name no longer exists.
        temporary.unlink(missing_ok=True)


def _stream(
    url: str, output: BinaryIO, remote: RemoteFile, *, timeout: float, progress: bool
) -> tuple[int, int | None]:
    """Copy the response body into ``output``; return (bytes received, Content-Length)."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        # The timeout is set on the socket, so it applies to connecting and to
        # every read: a server that goes silent mid-body raises TimeoutError.
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = _content_length(response)
            total = announced if announced is not None else remote.size
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=remote.file_name,
                disable=not progress,
            ) as bar:
                while chunk := response.read(CHUNK_SIZE):
                    output.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            return received, announced
    except urllib.error.HTTPError as error:
        # HTTPError must be caught before the URLError/OSError it derives from.
        message = f"HTTP {error.code} {error.reason}"
        if error.code in RETRYABLE_STATUSES:
            raise _RetryableError(message) from error
        raise DownloadError(
            f"Could not download {remote.file_name} from {url}: {message}"
        ) from error
    except ValueError as error:
        # urllib raises ValueError for a URL it cannot use (e.g. no scheme).
        raise DownloadError(
            f"Cannot download {remote.file_name}: bad URL {url!r} ({error})"
        ) from error
    except (OSError, http.client.HTTPException) as error:
        # OSError covers URLError (no route, refused, DNS), TimeoutError and
        # ConnectionError; HTTPException covers IncompleteRead and a server that
        # hangs up without answering.
        raise _RetryableError(_describe(error)) from error


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error.reason, str):
        error = error.reason
    if isinstance(error, TimeoutError):
        return "timed out waiting for the server (it stopped sending)"
    if isinstance(error, http.client.IncompleteRead):
        return "truncated: the server closed the connection before the end of the file"
    return f"{type(error).__name__}: {error}"
