"""Lesson results on disk: each lesson records its metrics, the demo reads them back.

A lesson calls :func:`save_results` once at its end; the file
``<data dir>/results/<lesson>.json`` then holds, per approach, test accuracy at
each k, (where measured) train accuracy, and the candidate pool the lists were
drawn from. :func:`comparison_table` joins them.

Every recorded number uses one protocol, :data:`PROTOCOL`: the lists a user
would see. :func:`real_results` reads the original study's table on the real
files, which the kit ships beside the student's numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tfrs_course.files import write_text_atomically
from tfrs_course.paths import default_data_dir

# The cut-offs every lesson reports top-k accuracy at (tfrs_course.evaluation uses these too).
KS = (1, 5, 10, 50, 100)
PROTOCOL = (
    "top-k accuracy of the lists each kept user would see: the user's top k from an exact index "
    "over the stated candidates, matched by item id (a true item outside the candidates is a miss)"
)
REAL_RESULTS = Path(__file__).resolve().parent / "data" / "real_results.json"


def results_dir(data_dir: str | Path | None = None) -> Path:
    return Path(data_dir if data_dir is not None else default_data_dir()) / "results"


def save_results(
    lesson: str,
    approaches: dict[str, dict[str, dict[int, float]]],
    *,
    data_note: str,
    data_dir: str | Path | None = None,
) -> Path:
    """Record a lesson's metrics, replacing what the lesson recorded before.

    Args:
        lesson: the lesson's folder name, e.g. ``"01_baseline_metrics"``.
        approaches: approach name -> ``{"test": {k: accuracy}, "train": {k: accuracy},
            "candidates": "what the lists are drawn from"}`` (``"train"`` and
            ``"candidates"`` are optional).
        data_note: which data the numbers come from (``str(load_babyshop(...))``).
        data_dir: the data folder (defaults to the course's).

    Returns:
        The file written.
    """
    record = {
        "lesson": lesson,
        "data": data_note,
        "approaches": {
            name: {
                split: by_k if split == "candidates" else {str(k): float(v) for k, v in by_k.items()}
                for split, by_k in splits.items()
            }
            for name, splits in approaches.items()
        },
    }
    folder = results_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{lesson}.json"
    write_text_atomically(target, json.dumps(record, indent=2))
    return target


def load_results(data_dir: str | Path | None = None) -> dict[str, dict]:
    """Every recorded lesson's results, by lesson name, in lesson order."""
    folder = results_dir(data_dir)
    if not folder.is_dir():
        return {}
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def comparison_table(data_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per approach across all lessons: test top-k accuracy and train top-100.

    Returns:
        A DataFrame indexed by approach, with columns ``lesson``, ``candidates``,
        ``top-1`` ... ``top-100`` and ``train top-100`` (NaN where not measured).
    """
    rows = []
    for lesson, record in load_results(data_dir).items():
        for name, splits in record["approaches"].items():
            row = {"approach": name, "lesson": lesson, "candidates": splits.get("candidates", "")}
            for k in KS:
                row[f"top-{k}"] = splits.get("test", {}).get(str(k), float("nan"))
            row["train top-100"] = splits.get("train", {}).get("100", float("nan"))
            rows.append(row)
    columns = ["approach", "lesson", "candidates", *[f"top-{k}" for k in KS], "train top-100"]
    return pd.DataFrame(rows, columns=columns).set_index("approach")


def real_results() -> tuple[pd.DataFrame, dict[str, str]]:
    """The original study's results on the real Babyshop files, as the kit ships them.

    Returns:
        ``(table, about)``: a DataFrame indexed by approach with columns ``top-1``
        ... ``top-100`` and ``train top-100`` (NaN where the study reported
        nothing), and ``{"source": ..., "protocol": ...}`` saying where the
        numbers come from and how they were measured.
    """
    record = json.loads(REAL_RESULTS.read_text())
    rows = []
    for name, splits in record["approaches"].items():
        row = {"approach": name, **{f"top-{k}": splits["test"].get(str(k), float("nan")) for k in KS}}
        row["train top-100"] = splits.get("train", {}).get("100", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("approach"), {key: record[key] for key in ("source", "protocol")}
