"""The validated-table cache returns exactly what reading the CSV returns, and only while the CSV is unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tfrs_course.data import load_babyshop, synthetic
from tfrs_course.data.schema import FILE_NAMES, DataValidationError, read_table
from tfrs_course.data.table_cache import CACHE_FOLDER, read_table_cached


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    return synthetic.write_twin(tmp_path_factory.mktemp("data"), "tiny", seed=3)


@pytest.mark.parametrize("table", list(FILE_NAMES))
def test_a_cached_table_is_the_validated_table(twin, tmp_path, table):
    path = twin / FILE_NAMES[table]
    first = read_table_cached(path, table, tmp_path)
    assert len(list(tmp_path.iterdir())) == 1  # kept
    second = read_table_cached(path, table, tmp_path)
    expected = read_table(path, table)
    for frame in (first, second):
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    text_columns = [name for name in expected.columns if expected[name].dtype == object]
    assert text_columns and all(isinstance(value, str) for name in text_columns for value in second[name])


def test_a_changed_file_is_read_and_checked_again(twin, tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes((twin / FILE_NAMES["train"]).read_bytes())
    read_table_cached(path, "train", tmp_path / "cache")
    lines = path.read_text().splitlines()
    lines[1] = "not-an-id" + lines[1][lines[1].index(",") :]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match="line 2"):
        read_table_cached(path, "train", tmp_path / "cache")


def test_a_damaged_cache_or_one_that_cannot_be_written_falls_back_to_the_csv(twin, tmp_path):
    path = twin / FILE_NAMES["users"]
    expected = read_table(path, "users")
    read_table_cached(path, "users", tmp_path)
    for cached in tmp_path.iterdir():
        cached.write_bytes(b"not a cache")
    pd.testing.assert_frame_equal(read_table_cached(path, "users", tmp_path), expected, check_exact=True)
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    pd.testing.assert_frame_equal(read_table_cached(path, "users", blocked), expected, check_exact=True)


def test_load_babyshop_keeps_its_cache_in_the_data_folder(tmp_path):
    first = load_babyshop(source="synthetic", data_dir=tmp_path, size="tiny", seed=4)
    cached = sorted(os.listdir(tmp_path / CACHE_FOLDER))
    assert len(cached) == len(FILE_NAMES)
    second = load_babyshop(source="synthetic", data_dir=tmp_path, size="tiny", seed=4)
    pd.testing.assert_frame_equal(first.train, second.train, check_exact=True)
    assert sorted(os.listdir(tmp_path / CACHE_FOLDER)) == cached
