"""Shared test set-up.

Importing tfrs_course first selects legacy Keras (TF_USE_LEGACY_KERAS=1) before any
test module imports TensorFlow, exactly as a lesson's setup cell does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tfrs_course  # noqa: F401

# CI clones the project next to shared/, so the reference data is ../shared/babyshop;
# a clone elsewhere (under /tmp, say) names the folder with this variable.
SHARED_BABYSHOP_VARIABLE = "TFRS_COURSE_SHARED_BABYSHOP"


def shared_babyshop_path() -> Path:
    """Where the real item and user files and the data set's README are, present or not."""
    configured = os.environ.get(SHARED_BABYSHOP_VARIABLE)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "babyshop"


@pytest.fixture(scope="session")
def babyshop_dir() -> Path:
    """The shared real-data folder; tests that need it are skipped, with the reason, without it."""
    path = shared_babyshop_path()
    if not path.is_dir():
        pytest.skip(
            f"reference data folder {path} is absent (expected next to the repo, "
            f"or named by ${SHARED_BABYSHOP_VARIABLE})"
        )
    return path
