"""Tests for the validating CSV reader, tfrs_course.data.schema.read_table.

The real item and user files must load; each kind of damage must fail with a
DataValidationError that names the file, the line and (where there is one) the
column, so a student can open the file and find the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrs_course.data.schema import FILE_NAMES, SCHEMAS, DataValidationError, read_table

HEADERS = {table: ",".join(schema.column_names) for table, schema in SCHEMAS.items()}

# A few valid rows per table; each case below damages one of them.
VALID_ROWS = {
    "train": [
        "11,101,girls,molo,tops,3",
        "11,102,boys,reima,bottoms,11",
        "-12,101,unisex,jacadi,tops,1",
    ],
    "test": ["11,103,unisex,molo,swimwear,7"],
    "items": [
        "101,pink,girls,molo,tops,0.5,2.0",
        "102,blue,boys,reima,bottoms,,",
        "9223372036854775807,beige,unisex,jacadi,furniture,1,12",
    ],
    "users": [
        "11,sweden,479.2,-0.2",
        "-9223372036854775808,sweden,0,0",
        "13,sweden,16618.0,-0.912",
    ],
}


def write_csv(folder: Path, table: str, lines: list[str], header: str | None = None) -> Path:
    path = folder / FILE_NAMES[table]
    text = "\n".join([HEADERS[table] if header is None else header, *lines]) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def read_failing(path: Path, table: str) -> str:
    """Read a file that must fail; check the file was not touched; return the message."""
    before = path.read_bytes()
    modified = path.stat().st_mtime_ns
    with pytest.raises(DataValidationError) as caught:
        read_table(path, table)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == modified
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "reader wrote a file"
    message = str(caught.value)
    assert str(path) in message, f"the message does not name the file: {message}"
    return message


def assert_names(message: str, line: int, column: str | None) -> None:
    assert f"line {line}" in message, f"expected line {line} in: {message}"
    if column is not None:
        assert f"'{column}'" in message, f"expected column {column!r} in: {message}"


# --- the real files ----------------------------------------------------------------------------


def test_real_item_info_loads(babyshop_dir: Path) -> None:
    path = babyshop_dir / "item_info.csv"
    before = path.stat().st_mtime_ns
    items = read_table(path, "items")
    assert items.shape == (61_704, 7)
    assert list(items.columns) == SCHEMAS["items"].column_names
    assert items["item_no"].map(type).eq(str).all()
    assert items["item_no"].is_unique
    assert set(items["gender_description"]) == {"unisex", "girls", "boys"}
    assert items["gender_description"].value_counts().to_dict() == {
        "unisex": 28_637,
        "girls": 21_254,
        "boys": 11_813,
    }
    assert items["min_age"].dtype == np.float64 and items["max_age"].dtype == np.float64
    # README: ages are missing for 19.5% of items.
    assert items["min_age"].isna().mean() == pytest.approx(0.195, abs=0.005)
    assert items["brand"].nunique() == 644 and items["product_group"].nunique() == 104
    # The README counts 31 colours: one row has " pink" with a leading space.
    # The reader strips surrounding spaces, so that row is plain "pink".
    assert items["colour"].nunique() == 30
    assert (items["colour"] == items["colour"].str.strip()).all()
    assert path.stat().st_mtime_ns == before


def test_real_user_info_loads(babyshop_dir: Path) -> None:
    users = read_table(babyshop_dir / "user_info.csv", "users")
    assert users.shape == (24_543, 4)
    assert list(users.columns) == SCHEMAS["users"].column_names
    assert users["user_no"].map(type).eq(str).all()
    assert users["user_no"].is_unique
    assert set(users["country"]) == {"sweden"}
    assert users["aov"].dtype == np.float64
    assert users["aov"].mean() == pytest.approx(703.6, abs=0.1)
    assert users["avg_markdown"].between(-0.912, 0).all()


# --- valid small files -------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(SCHEMAS))
def test_valid_files_load_with_the_right_types(tmp_path: Path, table: str) -> None:
    path = write_csv(tmp_path, table, VALID_ROWS[table])
    frame = read_table(path, table)
    assert list(frame.columns) == SCHEMAS[table].column_names
    assert len(frame) == len(VALID_ROWS[table])
    for column in SCHEMAS[table].columns:
        values = frame[column.name]
        if column.kind in ("id", "str"):
            assert values.dtype == object and values.map(type).eq(str).all()
        elif column.kind == "int":
            assert values.dtype == np.int64
        else:
            assert values.dtype == np.float64


def test_ids_keep_every_digit(tmp_path: Path) -> None:
    # As floats these two ids would be the same number; as strings they stay apart.
    rows = ["9223372036854775807,sweden,1,0", "9223372036854775806,sweden,1,0"]
    users = read_table(write_csv(tmp_path, "users", rows), "users")
    assert users["user_no"].tolist() == ["9223372036854775807", "9223372036854775806"]


def test_empty_ages_are_missing_values(tmp_path: Path) -> None:
    items = read_table(write_csv(tmp_path, "items", VALID_ROWS["items"]), "items")
    assert np.isnan(items.loc[1, "min_age"]) and np.isnan(items.loc[1, "max_age"])


def test_header_only_file_gives_an_empty_table(tmp_path: Path) -> None:
    frame = read_table(write_csv(tmp_path, "train", []), "train")
    assert frame.shape == (0, 6)


def test_columns_in_another_order_are_accepted_and_reordered(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "users", ["sweden,11,479.2,-0.2"], header="country,user_no,aov,avg_markdown")
    users = read_table(path, "users")
    assert list(users.columns) == SCHEMAS["users"].column_names
    assert users.loc[0, "user_no"] == "11"


def test_a_trailing_blank_line_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "user_info.csv"
    path.write_text(HEADERS["users"] + "\n" + VALID_ROWS["users"][0] + "\n\n", encoding="utf-8")
    assert len(read_table(path, "users")) == 1


# --- malformed files: each names the file, the line and the column ----------------------------

# (table, data rows or None for the valid ones, header or None, expected line, expected column)
CASES = {
    "missing column": ("users", ["11,sweden,479.2"], "user_no,country,aov", 1, "avg_markdown"),
    "extra column": ("users", ["11,sweden,479.2,-0.2,x"], HEADERS["users"] + ",note", 1, "note"),
    "text in aov": ("users", ["11,sweden,479.2,-0.2", "12,sweden,cheap,-0.1"], None, 3, "aov"),
    "infinite aov": ("users", ["11,sweden,inf,-0.2"], None, 2, "aov"),
    "nan aov": ("users", ["11,sweden,nan,-0.2"], None, 2, "aov"),
    "negative aov": ("users", ["11,sweden,-3,-0.2"], None, 2, "aov"),
    "empty aov": ("users", ["11,sweden,,-0.2"], None, 2, "aov"),
    "markdown above 0": ("users", ["11,sweden,479.2,0.5"], None, 2, "avg_markdown"),
    "empty user id": ("users", ["11,sweden,1,0", ",sweden,1,0"], None, 3, "user_no"),
    "id with letters": ("users", ["11a,sweden,1,0"], None, 2, "user_no"),
    "id with a decimal point": ("users", ["11.0,sweden,1,0"], None, 2, "user_no"),
    "id beyond int64": ("users", ["9223372036854775808,sweden,1,0"], None, 2, "user_no"),
    "id below int64": ("users", ["-9223372036854775809,sweden,1,0"], None, 2, "user_no"),
    "id of 20 digits": ("users", ["12345678901234567890,sweden,1,0"], None, 2, "user_no"),
    "month 1.5": ("train", ["11,101,girls,molo,tops,1.5"], None, 2, "first_interaction_month"),
    "month 13": ("train", ["11,101,girls,molo,tops,13"], None, 2, "first_interaction_month"),
    "month text": ("test", ["11,101,girls,molo,tops,may"], None, 2, "first_interaction_month"),
    "empty item id": ("train", ["11,,girls,molo,tops,3"], None, 2, "item_no"),
    "gender not allowed": (
        "items",
        ["101,pink,women,molo,tops,1,2"],
        None,
        2,
        "gender_description",
    ),
    "gender in capitals": ("train", ["11,101,Girls,molo,tops,3"], None, 2, "gender_description"),
    "empty brand": ("items", ["101,pink,girls,,tops,1,2"], None, 2, "brand"),
    "min_age text": ("items", ["101,pink,girls,molo,tops,one,2"], None, 2, "min_age"),
    "duplicate pair in train": (
        "train",
        ["11,101,girls,molo,tops,3", "12,101,girls,molo,tops,3", "11,101,girls,molo,tops,5"],
        None,
        4,
        "user_no+item_no",
    ),
    "duplicate item_no": (
        "items",
        ["101,pink,girls,molo,tops,,", "102,red,boys,molo,tops,,", "101,blue,boys,molo,tops,,"],
        None,
        4,
        "item_no",
    ),
    "duplicate user_no": ("users", ["11,sweden,1,0", "11,sweden,2,0"], None, 3, "user_no"),
    "short row": ("items", ["101,pink,girls,molo,tops"], None, 2, "min_age"),
    "long row": ("users", ["11,sweden,1,0", "12,sweden,1,0,7"], None, 3, None),
    "long first row": ("users", ["11,sweden,1,0,7", "12,sweden,1,0"], None, 2, None),
    "blank line inside": ("users", ["11,sweden,1,0", "", "12,sweden,1,0"], None, 3, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_file_names_file_line_and_column(tmp_path: Path, case: str) -> None:
    table, rows, header, line, column = CASES[case]
    path = write_csv(tmp_path, table, rows, header=header)
    message = read_failing(path, table)
    assert_names(message, line, column)


def test_missing_column_message_says_what_is_expected(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "users", ["11,sweden,1"], header="user_no,country,aov")
    message = read_failing(path, "users")
    assert "missing column(s) ['avg_markdown']" in message
    assert str(SCHEMAS["users"].column_names) in message


def test_wrong_value_is_quoted_in_the_message(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "users", ["12,sweden,cheap,-0.1"])
    assert "'cheap'" in read_failing(path, "users")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"")
    assert "empty" in read_failing(path, "train")


def test_file_of_blank_lines_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"\n\n")
    assert "empty" in read_failing(path, "train")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "item_info.csv"
    good = (HEADERS["items"] + "\n" + VALID_ROWS["items"][0] + "\n").encode()
    # "rosé" in Latin-1: the é is the single byte 0xE9, invalid in UTF-8.
    path.write_bytes(good + b"102,ros\xe9,girls,molo,tops,,\n")
    message = read_failing(path, "items")
    assert "UTF-8" in message
    assert_names(message, 3, None)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "absent.csv", "users")
    assert list(tmp_path.iterdir()) == []


def test_unknown_table_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "users", VALID_ROWS["users"])
    with pytest.raises(KeyError):
        read_table(path, "events")


def test_reading_a_valid_file_does_not_change_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "train", VALID_ROWS["train"])
    before = path.read_bytes()
    modified = path.stat().st_mtime_ns
    frame = read_table(path, "train")
    frame.loc[0, "brand"] = "changed"  # the table is a copy, not a view of the file
    assert path.read_bytes() == before and path.stat().st_mtime_ns == modified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]
    assert isinstance(frame, pd.DataFrame)
