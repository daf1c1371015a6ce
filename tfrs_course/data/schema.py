"""The four Babyshop tables: their columns, and a validating CSV reader.

Every CSV the course reads goes through :func:`read_table`, so a malformed file
fails with an error that names the file, the row and the column, and nothing
downstream ever sees a half-valid table.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Signed 64-bit integers written in decimal, as the original data stores ids.
ID_PATTERN = re.compile(r"-?[0-9]{1,19}")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
GENDERS = ("boys", "girls", "unisex")


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Args:
        name: the header in the CSV file.
        kind: ``"id"`` (int64 as a decimal string), ``"str"``, ``"int"`` or ``"float"``.
        nullable: whether empty cells are allowed.
        allowed: for ``"str"`` columns, the only values allowed (if given).
        bounds: for numeric columns, the inclusive range allowed (if given).
    """

    name: str
    kind: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class TableSchema:
    """A table's columns and the columns whose values must be unique together."""

    name: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


_INTERACTION_COLUMNS = (
    Column("user_no", "id"),
    Column("item_no", "id"),
    Column("gender_description", "str", allowed=GENDERS),
    Column("brand", "str"),
    Column("product_group", "str"),
    Column("first_interaction_month", "int", bounds=(1, 12)),
)

SCHEMAS: dict[str, TableSchema] = {
    "train": TableSchema("train", _INTERACTION_COLUMNS, unique=("user_no", "item_no")),
    "test": TableSchema("test", _INTERACTION_COLUMNS, unique=("user_no", "item_no")),
    "items": TableSchema(
        "items",
        (
            Column("item_no", "id"),
            Column("colour", "str"),
            Column("gender_description", "str", allowed=GENDERS),
            Column("brand", "str"),
            Column("product_group", "str"),
            Column("min_age", "float", nullable=True),
            Column("max_age", "float", nullable=True),
        ),
        unique=("item_no",),
    ),
    "users": TableSchema(
        "users",
        (
            Column("user_no", "id"),
            Column("country", "str"),
            Column("aov", "float", bounds=(0.0, float("inf"))),
            Column("avg_markdown", "float", bounds=(-1.0, 0.0)),
        ),
        unique=("user_no",),
    ),
}

# The file each table is stored in, in the original repository and in the cache.
FILE_NAMES: dict[str, str] = {
    "train": "train.csv",
    "test": "test.csv",
    "items": "item_info.csv",
    "users": "user_info.csv",
}


class DataValidationError(ValueError):
    """A CSV file does not match its table's schema. The message names file, row and column."""


def _fail(path: Path, row: int | None, column: str | None, problem: str) -> DataValidationError:
    # Row numbers are the file's line numbers (the header is line 1), which is
    # what a person opening the file in an editor sees.
    where = [str(path)]
    if row is not None:
        where.append(f"line {row}")
    if column is not None:
        where.append(f"column '{column}'")
    return DataValidationError(f"{', '.join(where)}: {problem}")


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """Read and validate one Babyshop CSV file.

    Args:
        path: the CSV file.
        table: which table it holds: ``"train"``, ``"test"``, ``"items"`` or ``"users"``.

    Returns:
        The table, with ids and text as Python ``str`` (object dtype), integer
        columns as ``int64`` and numeric columns as ``float64``.

    Raises:
        DataValidationError: the file is empty or not UTF-8, a row has more or
            fewer fields than the header, a blank line inside the data, a missing
            or extra column, an empty or malformed id, a value of the wrong type
            or out of range, or a duplicate where the schema forbids one. The
            message names the file, line and column.
        FileNotFoundError: the file does not exist.

    The file is only read, never written.
    """
    path = Path(path)
    schema = SCHEMAS[table]
    # pandas silently repairs ragged rows (pads short rows with empty cells,
    # turns an extra field in the first row into the index) and skips blank
    # lines, which would shift every line number after them. Check the layout
    # first, so such files fail with the line that is wrong.
    _check_layout(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, index_col=False)
    except UnicodeDecodeError as error:
        raise _fail(path, None, None, f"is not UTF-8 text ({error.reason})") from error
    except pd.errors.EmptyDataError as error:
        raise _fail(path, None, None, "is empty: expected a header line") from error
    except pd.errors.ParserError as error:
        raise _fail(path, None, None, f"is not a well-formed CSV file: {error}") from error

    expected = schema.column_names
    found = list(raw.columns)
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        raise _fail(path, 1, None, f"{'; '.join(parts)}; expected exactly {expected}")
    raw = raw[expected]

    result = {}
    for column in schema.columns:
        result[column.name] = _convert_column(path, raw[column.name], column)
    frame = pd.DataFrame(result)

    if schema.unique:
        duplicated = frame.duplicated(subset=list(schema.unique), keep="first")
        if duplicated.any():
            position = int(np.flatnonzero(duplicated.to_numpy())[0])
            key = ", ".join(f"{name}={frame.iloc[position][name]}" for name in schema.unique)
            raise _fail(
                path, position + 2, "+".join(schema.unique), f"duplicate row ({key}); each must be unique"
            )
    return frame


def _check_layout(path: Path) -> None:
    """Fail unless every row has as many fields as the header and no blank line
    comes before the last row. Line numbers are the file's own (the header is 1)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header: list[str] | None = None
            blank_line = None
            for record in reader:
                if not record:
                    # Blank lines at the very end are harmless; anywhere else
                    # they are a damaged file (and pandas would skip them).
                    blank_line = blank_line or reader.line_num
                    continue
                if blank_line is not None:
                    raise _fail(path, blank_line, None, "is blank; expected a row of values")
                if header is None:
                    header = record
                elif len(record) < len(header):
                    missing = header[len(record) :]
                    raise _fail(
                        path,
                        reader.line_num,
                        missing[0],
                        f"the row has {len(record)} fields but the header has {len(header)}: "
                        f"no value for {missing}",
                    )
                elif len(record) > len(header):
                    raise _fail(
                        path,
                        reader.line_num,
                        None,
                        f"the row has {len(record)} fields but the header has {len(header)} "
                        f"(extra values after column '{header[-1]}')",
                    )
    except UnicodeDecodeError as error:
        line = _first_undecodable_line(path)
        raise _fail(path, line, None, f"is not UTF-8 text ({error.reason})") from error
    except csv.Error as error:
        problem = f"is not a well-formed CSV file: {error}"
        raise _fail(path, reader.line_num, None, problem) from error
    if header is None:
        raise _fail(path, None, None, "is empty: expected a header line")


def _first_undecodable_line(path: Path) -> int | None:
    # Only called after a decoding error, to say where it is: the text reader
    # decodes in blocks, so it cannot tell which line held the bad bytes.
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _convert_column(path: Path, values: pd.Series, column: Column) -> pd.Series:
    text = values.str.strip()
    empty = (text == "").to_numpy()
    if empty.any() and not column.nullable:
        position = int(np.flatnonzero(empty)[0])
        raise _fail(path, position + 2, column.name, "is empty; a value is required")

    if column.kind == "id":
        valid = text.str.fullmatch(ID_PATTERN).to_numpy()
        if valid.all():
            # Range check through Python ints: ids wider than int64 are malformed.
            as_int = text.map(int)
            valid = ((as_int >= INT64_MIN) & (as_int <= INT64_MAX)).to_numpy()
        _raise_first_invalid(path, text, valid, column, "is not a signed 64-bit integer id")
        return text.astype(object)

    if column.kind == "str":
        if column.allowed is not None:
            valid = text.isin(column.allowed).to_numpy()
            _raise_first_invalid(path, text, valid, column, f"must be one of {list(column.allowed)}")
        return text.astype(object)

    numbers = pd.to_numeric(text.where(~empty, None), errors="coerce")
    # "inf", "-inf" and "nan" parse as floats but are not data; isfinite also
    # catches the cells to_numeric could not parse (they became NaN).
    finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
    invalid = ~empty & ~finite
    if column.kind == "int":
        invalid |= ~empty & (numbers.fillna(0) % 1 != 0).to_numpy()
    _raise_first_invalid(path, text, ~invalid, column, f"is not a valid {column.kind}")
    if column.bounds is not None:
        low, high = column.bounds
        outside = (~empty) & ((numbers < low) | (numbers > high)).to_numpy()
        _raise_first_invalid(path, text, ~outside, column, f"is outside the range [{low}, {high}]")
    if column.kind == "int":
        return numbers.astype("int64")
    return numbers.astype("float64")


def _raise_first_invalid(
    path: Path, text: pd.Series, valid: np.ndarray, column: Column, problem: str
) -> None:
    if valid.all():
        return
    position = int(np.flatnonzero(~valid)[0])
    raise _fail(path, position + 2, column.name, f"value {text.iloc[position]!r} {problem}")
