"""How long the synthetic twins take to build and to load, and how big they are.

Run ``python -m tfrs_course.benchmarks data``. Twins are built in a temporary
folder, never in the course's ``data/`` folder, and removed afterwards.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tfrs_course.data import schema, synthetic

SIZES_TO_MEASURE = ("default", "full")


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def measure(size: str, work_dir: Path, seed: int = 0) -> dict[str, float]:
    """Build one twin, then read all four tables back through the schema check.

    Args:
        size: a key of :data:`tfrs_course.data.synthetic.SIZES`.
        work_dir: a scratch folder to build the twin in.
        seed: the twin's seed.

    Returns:
        ``build_s`` (generate and write), ``load_s`` (read and validate all four
        CSV files), ``megabytes`` on disk and ``pairs`` (train plus test rows).
    """
    started = time.perf_counter()
    folder = synthetic.write_twin(work_dir, size, seed)
    built = time.perf_counter()
    tables = {table: schema.read_table(folder / file_name, table) for table, file_name in schema.FILE_NAMES.items()}
    loaded = time.perf_counter()
    return {
        "build_s": built - started,
        "load_s": loaded - built,
        "megabytes": _folder_bytes(folder) / 1e6,
        "pairs": len(tables["train"]) + len(tables["test"]),
    }


def main() -> None:
    """Print build time, size on disk and load time of the default and full twins."""
    print(f"{'twin':<10}{'pairs':>10}{'build s':>10}{'MB':>8}{'load s':>9}")
    with tempfile.TemporaryDirectory(prefix="tfrs-course-bench-") as scratch:
        for size in SIZES_TO_MEASURE:
            result = measure(size, Path(scratch))
            print(
                f"{size:<10}{result['pairs']:>10,}{result['build_s']:>10.1f}"
                f"{result['megabytes']:>8.1f}{result['load_s']:>9.1f}"
            )


if __name__ == "__main__":
    main()
