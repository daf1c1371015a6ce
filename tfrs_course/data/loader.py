"""``load_babyshop``: one call that gives a lesson its four tables.

The real files are used when a verified download is cached; otherwise the
seeded synthetic twin, built on first use. The two are never mixed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tfrs_course.data import download, synthetic
from tfrs_course.data.schema import FILE_NAMES
from tfrs_course.data.table_cache import CACHE_FOLDER, read_table_cached
from tfrs_course.paths import default_data_dir

SOURCES = ("auto", "real", "synthetic")
# Lets a test run, a workshop host or CI choose the source without editing lessons.
SOURCE_VARIABLE = "TFRS_COURSE_DATA_SOURCE"
FETCH_HINT = "run `tfrs-course data fetch` where the internet is reachable to use the real Babyshop files"


@dataclass(frozen=True)
class BabyshopData:
    """The four Babyshop tables and where they came from.

    Attributes:
        train: one row per (user, item) pair in the training split.
        test: one row per (user, item) pair in the test split.
        items: one row per item, with its metadata.
        users: one row per user in user_info.csv (fewer users than the interactions hold).
        source: ``"real"`` or ``"synthetic"``.
        origin: the folder the files were read from.
        note: one line for people: which data this is, and how to get the real files.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    source: str
    origin: Path
    note: str

    def __str__(self) -> str:
        return self.note


def load_babyshop(
    source: str | None = None,
    data_dir: str | Path | None = None,
    *,
    size: str = "default",
    seed: int = 0,
    base_url: str | None = None,
) -> BabyshopData:
    """Load train, test, items and users.

    Args:
        source: ``"auto"`` (the real files if a verified copy is cached, else the
            synthetic twin), ``"real"`` (download and verify if not cached) or
            ``"synthetic"``. ``None`` reads ``$TFRS_COURSE_DATA_SOURCE``, then
            falls back to ``"auto"``.
        data_dir: the cache folder; defaults to ``data/`` of the checkout.
        size: the synthetic twin's size (``"default"``, ``"full"``, ...).
        seed: the synthetic twin's seed.
        base_url: where to download the real files from (``source="real"``).

    Returns:
        A :class:`BabyshopData`; ``print(data)`` says which source was used.

    Raises:
        ValueError: an unknown source.
        DataValidationError: a file does not match its schema.
        DownloadError: ``source="real"`` and the files could not be fetched.
    """
    chosen = source if source is not None else os.environ.get(SOURCE_VARIABLE, "").strip() or "auto"
    if chosen not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {chosen!r}")
    folder = Path(data_dir) if data_dir is not None else default_data_dir()

    if chosen == "real" or (chosen == "auto" and real_cache_is_valid(folder)):
        paths = download.fetch_real_data(folder, base_url, progress=True)
        tables = {table: read_table_cached(path, table, folder / CACHE_FOLDER) for table, path in paths.items()}
        origin = download.real_cache_dir(folder)
        note = (
            f"Data: the real Babyshop files ({len(tables['train']):,} train and "
            f"{len(tables['test']):,} test pairs), verified, from {origin}."
        )
        return BabyshopData(**tables, source="real", origin=origin, note=note)

    twin_folder = synthetic.ensure_twin(folder, size=size, seed=seed)
    tables = {
        table: read_table_cached(twin_folder / FILE_NAMES[table], table, folder / CACHE_FOLDER) for table in FILE_NAMES
    }
    note = (
        f"Data: the synthetic twin (size {size!r}, seed {seed}; {len(tables['train']):,} train and "
        f"{len(tables['test']):,} test pairs), not the real Babyshop files; {FETCH_HINT}."
    )
    return BabyshopData(**tables, source="synthetic", origin=twin_folder, note=note)


def real_cache_is_valid(data_dir: Path) -> bool:
    """Whether all four real files are cached and pass verification."""
    status = download.real_cache_status(data_dir)
    return all(status.get(table) == "verified" for table in FILE_NAMES)
