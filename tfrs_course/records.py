"""Lesson results on disk: each lesson records its metrics, the demo reads them back.

A lesson calls :func:`save_results` once at its end; the file
``<data dir>/results/<lesson>.json`` then holds, per approach, test accuracy at
each k and (where measured) train accuracy. :func:`comparison_table` joins them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tfrs_course.files import write_text_atomically
from tfrs_course.paths import default_data_dir

KS = (1, 5, 10, 50, 100)


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
        approaches: approach name -> ``{"test": {k: accuracy}, "train": {k: accuracy}}``
            (``"train"`` is optional).
        data_note: which data the numbers come from (``str(load_babyshop(...))``).
        data_dir: the data folder (defaults to the course's).

    Returns:
        The file written.
    """
    record = {
        "lesson": lesson,
        "data": data_note,
        "approaches": {
            name: {split: {str(k): float(v) for k, v in by_k.items()} for split, by_k in splits.items()}
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
        A DataFrame indexed by approach, with columns ``lesson``, ``top-1`` ...
        ``top-100`` and ``train top-100`` (NaN where not measured).
    """
    rows = []
    for lesson, record in load_results(data_dir).items():
        for name, splits in record["approaches"].items():
            row = {"approach": name, "lesson": lesson}
            for k in KS:
                row[f"top-{k}"] = splits.get("test", {}).get(str(k), float("nan"))
            row["train top-100"] = splits.get("train", {}).get("100", float("nan"))
            rows.append(row)
    columns = ["approach", "lesson", *[f"top-{k}" for k in KS], "train top-100"]
    return pd.DataFrame(rows, columns=columns).set_index("approach")
