"""Make TensorFlow Recommenders importable: select legacy Keras before TensorFlow loads.

TFRS 0.7.7 is written for Keras 2 and raises ImportError under Keras 3, which
TensorFlow 2.16+ loads by default. Setting ``TF_USE_LEGACY_KERAS=1`` before the
first ``import tensorflow`` makes ``tf.keras`` point at the ``tf-keras`` package
(Keras 2). Once TensorFlow is imported the choice is fixed for the process, so
this module must run first: ``import tfrs_course`` runs it.
"""

from __future__ import annotations

import os
import sys

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"

RESTART_MESSAGE = (
    "TensorFlow was imported before tfrs_course, with Keras 3, and TensorFlow "
    "Recommenders 0.7.7 needs Keras 2 (the tf-keras package).\n"
    "What to do: restart the kernel (or the Python process) and run "
    "`import tfrs_course` before anything imports TensorFlow; or set the "
    f"environment variable {LEGACY_KERAS_VARIABLE}=1 before starting Python."
)


class KerasVersionError(RuntimeError):
    """TensorFlow is already loaded with Keras 3, so TFRS cannot work in this process."""


def configure() -> None:
    """Select legacy Keras and quiet TensorFlow's C++ start-up logging.

    Safe to call many times. Raises ``KerasVersionError`` with instructions if
    TensorFlow was already imported and its ``tf.keras`` is Keras 3.
    """
    os.environ[LEGACY_KERAS_VARIABLE] = "1"
    # TensorFlow's C++ log lines go to stderr, including an "error" on every machine
    # without a GPU (failed call to cuInit). nbgrader gives zero points to a test
    # cell that writes to stderr, and students find them alarming. Python errors
    # still raise as usual.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        check_legacy_keras()


def check_legacy_keras() -> None:
    """Raise ``KerasVersionError`` if the loaded TensorFlow's ``tf.keras`` is Keras 3.

    TensorFlow reads ``TF_USE_LEGACY_KERAS`` when it is imported; legacy Keras
    shows itself as the ``tf_keras`` package behind ``tf.keras``.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    keras_module = getattr(tf.keras, "__name__", "")
    if not keras_module.startswith("tf_keras"):
        raise KerasVersionError(f"{RESTART_MESSAGE}\n(tf.keras is {keras_module or 'unknown'}.)")


def subprocess_environment() -> dict[str, str]:
    """The environment for tools run as subprocesses (nbgrader, jupyter, kernels).

    The running interpreter's ``bin/`` goes first on PATH, because nbgrader calls
    helper programs (alembic) by name and a virtualenv is often not activated;
    legacy Keras is selected for every Python the subprocess starts.
    """
    environment = dict(os.environ)
    scripts = os.path.dirname(sys.executable)
    environment["PATH"] = os.pathsep.join([scripts, environment.get("PATH", "")])
    environment[LEGACY_KERAS_VARIABLE] = "1"
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return environment
