"""The stack: legacy Keras is selected for every entry point, and the pins agree."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, **environment: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in __import__("os").environ.items() if key != "TF_USE_LEGACY_KERAS"}
    clean.update(environment)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, check=False)


def test_importing_the_kit_first_makes_tfrs_work_without_any_setting():
    completed = _python(
        "import tfrs_course, tensorflow as tf, tensorflow_recommenders as tfrs\n"
        "print(tf.keras.__name__, tfrs.__version__)"
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split()[0].startswith("tf_keras")


@pytest.mark.slow
def test_tensorflow_already_on_keras_3_gives_one_clear_message():
    completed = _python("import tensorflow as tf\ntf.keras.layers\nimport tfrs_course")
    assert completed.returncode != 0
    last_line = completed.stderr.strip().splitlines()[-1]
    assert "KerasVersionError" in completed.stderr
    assert "restart the kernel" in completed.stderr
    assert "tensorflow_recommenders" not in completed.stderr  # not a traceback from inside TFRS
    assert last_line.startswith("(tf.keras is keras")


def test_console_script_selects_legacy_keras_itself():
    script = Path(sys.executable).parent / "tfrs-course"
    completed = subprocess.run(
        [str(script), "data", "info"], capture_output=True, text=True, check=False,
        env={key: value for key, value in __import__("os").environ.items() if key != "TF_USE_LEGACY_KERAS"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "load_babyshop()" in completed.stdout


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_environment_yml_has_the_same_pins_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    expected = _pins(project["course"] + project["dev"])
    listed = re.findall(r"^\s+- ([A-Za-z0-9_.\-\[\]]+==[^\s]+)\s*$", (REPO / "environment.yml").read_text(), re.M)
    assert _pins(listed) == expected
    assert "python=3.11" in (REPO / "environment.yml").read_text()


def test_the_course_stack_pins_tensorflow_to_the_line_scann_needs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = _pins(project["course"])
    assert pins["tensorflow"].startswith("2.20.") and pins["tf-keras"].startswith("2.20.")
    assert pins["scann"] == "1.4.2" and pins["tensorflow-recommenders"] == "0.7.7"
