"""Atomic small-file writes: the old content or the new, never a part, never a leftover."""

import pytest

from tfrs_course.files import write_text_atomically


class _Unwritable:
    """Not a str: writing it fails after the temporary file exists."""


def test_replaces_the_content_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old\n")
    write_text_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["grades.csv"]


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        write_text_atomically(target, _Unwritable())
    assert target.read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["grades.csv"]
