"""Validated tables kept between runs, so that a lesson reads its data in a fraction of a second.

Reading a Babyshop CSV file through its schema
(:func:`tfrs_course.data.schema.read_table`) checks every value in Python and
takes seconds, and every lesson, test and grading run reads the same files. The
first read keeps the validated table in ``<data dir>/cache/``, in numpy's own
format (loaded without pickle, so reading it runs no code); later reads use it
while the CSV file's size and modification time, its path, the table's schema
and the kit's version are what they were. Anything else (a changed or replaced
file, a cache that cannot be read or written) falls back to reading the CSV file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from tfrs_course import __version__
from tfrs_course.data.schema import SCHEMAS, read_table

CACHE_FOLDER = "cache"
# A text column's distinct values are stored as one UTF-8 blob, separated by this
# character (which no Babyshop value holds; a table with one is simply not cached).
SEPARATOR = "\x00"


def read_table_cached(path: str | Path, table: str, cache_dir: Path) -> pd.DataFrame:
    """What :func:`~tfrs_course.data.schema.read_table` returns, from the cache when it is current.

    Args:
        path: the CSV file.
        table: ``"train"``, ``"test"``, ``"items"`` or ``"users"``.
        cache_dir: the data folder's ``cache`` folder (created if missing).

    Returns:
        The validated table.

    Raises:
        DataValidationError, FileNotFoundError: as ``read_table`` does; invalid
            files are never cached.
    """
    path = Path(path).resolve()
    key = _key(path, table)
    cached = cache_dir / f"{hashlib.sha256(str(path).encode()).hexdigest()[:16]}-{table}.npz"
    frame = _load(cached, key)
    if frame is None:
        frame = read_table(path, table)
        _save(cached, key, frame)
    return frame


def _key(path: Path, table: str) -> str:
    status = path.stat()  # FileNotFoundError for a missing file, as read_table raises
    return json.dumps(
        [__version__, str(path), status.st_size, status.st_mtime_ns, table, repr(SCHEMAS[table])]
    )


def _load(cached: Path, key: str) -> pd.DataFrame | None:
    try:
        with np.load(cached, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            rows = int(stored["rows"])
            columns = {}
            for name, kind in zip(stored["names"].tolist(), stored["kinds"].tolist(), strict=True):
                values = stored[f"column_{len(columns)}"]
                if kind == "text":
                    blob = stored[f"distinct_{len(columns)}"].tobytes().decode("utf-8")
                    distinct = np.array(blob.split(SEPARATOR) if rows else [], dtype=object)
                    columns[name] = pd.Series(distinct[values], dtype=object)
                else:
                    columns[name] = pd.Series(values)
            if any(len(column) != rows for column in columns.values()):
                return None
            return pd.DataFrame(columns)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # no cache yet, or one from another version: read the CSV file


def _save(cached: Path, key: str, frame: pd.DataFrame) -> None:
    arrays: dict[str, np.ndarray] = {}
    kinds = []
    for position, values in enumerate(frame[column] for column in frame.columns):
        if values.dtype == object:
            # Ids repeat across rows: each distinct value is stored once, rows hold its number.
            codes, distinct = pd.factorize(values)
            joined = SEPARATOR.join(distinct.tolist())
            if joined.count(SEPARATOR) != max(len(distinct) - 1, 0):
                return  # a value holds the separator: not cached
            arrays[f"column_{position}"] = codes
            arrays[f"distinct_{position}"] = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
            kinds.append("text")
        else:
            arrays[f"column_{position}"] = values.to_numpy()
            kinds.append("number")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=cached.parent, prefix=f".{cached.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(
                    stream, key=np.array(key), rows=np.array(len(frame)),
                    names=np.array(list(frame.columns)), kinds=np.array(kinds), **arrays,
                )  # fmt: skip
            os.replace(temporary, cached)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        return  # a read-only data folder: the tables are still read, only not kept
