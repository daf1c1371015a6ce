"""Where the course's folders are, in a checkout and in an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "TFRS_COURSE_DATA_DIR"

PACKAGE_DIR = Path(__file__).resolve().parent


def course_root() -> Path:
    """The folder that holds ``solutions/`` and ``autograder/``.

    In a git checkout (an editable install) that is the repository itself; a
    wheel installed elsewhere, as in Colab, carries copies under ``_course/``.
    """
    checkout = PACKAGE_DIR.parent
    if (checkout / "solutions").is_dir() and (checkout / "autograder").is_dir():
        return checkout
    bundled = PACKAGE_DIR / "_course"
    if bundled.is_dir():
        return bundled
    raise FileNotFoundError(
        f"Cannot find the course's solutions/ and autograder/ folders next to {PACKAGE_DIR} "
        f"or in {bundled}. Reinstall the kit (see README.md)."
    )


def default_data_dir() -> Path:
    """Where downloads, the synthetic twin and lesson results are cached.

    ``$TFRS_COURSE_DATA_DIR`` if set; else ``data/`` of the checkout; else a
    per-user cache folder (an installed wheel has no checkout).
    """
    configured = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser()
    checkout_data = PACKAGE_DIR.parent / "data"
    if (PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return checkout_data
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tfrs_course"
