"""Google Colab: the badge and the "Colab only" set-up cell that every lesson starts with.

Where the course is published is one committed setting, ``repository.toml`` next
to this module. ``tfrs-course lessons set-repository [URL]`` writes it (by default
from the ``origin`` remote) and rebuilds the lessons, so a fork opens itself in
Colab. While the setting is empty, the badge cell and the Colab cell say so
instead of linking nowhere.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

SETTING_FILE = Path(__file__).resolve().parent / "repository.toml"
# Lets a workshop host (or a test) install the kit from a wheel or a mirror instead.
PACKAGE_VARIABLE = "TFRS_COURSE_PACKAGE"
TFRS_REQUIREMENT = "tensorflow-recommenders==0.7.7"
COLAB_CELL_TITLE = "Colab only: install the course kit (does nothing outside Google Colab)"

_GITHUB = re.compile(
    r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)


@dataclass(frozen=True)
class Repository:
    """Where the course is published. ``url`` is empty until someone sets it."""

    url: str
    branch: str

    @property
    def is_placeholder(self) -> bool:
        return not self.url


def github_https_url(address: str) -> str:
    """``https://github.com/OWNER/NAME`` for a GitHub address in https or ssh form.

    Raises:
        ValueError: the address is not a GitHub repository (Colab opens notebooks only from GitHub).
    """
    match = _GITHUB.match(address.strip())
    if not match:
        raise ValueError(
            f"{address!r} is not a GitHub repository address (https://github.com/OWNER/NAME or "
            "git@github.com:OWNER/NAME.git); Colab opens notebooks only from GitHub"
        )
    return f"https://github.com/{match['owner']}/{match['name']}"


def load_repository(path: Path = SETTING_FILE) -> Repository:
    """The committed setting.

    Raises:
        ValueError: the file is not valid TOML or its ``url`` is not a GitHub address.
    """
    try:
        setting = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from error
    url = str(setting.get("url", "")).strip()
    if url:
        url = github_https_url(url)
    return Repository(url=url, branch=str(setting.get("branch", "main")).strip() or "main")


def save_repository(repository: Repository, path: Path = SETTING_FILE) -> None:
    path.write_text(
        '# Where this course is published on GitHub: the lessons\' "Open in Colab" badges and\n'
        "# their Colab set-up cell point here. Empty means not published yet.\n"
        "# Change it with `tfrs-course lessons set-repository [URL]`, which also rebuilds the lessons.\n"
        f'url = "{repository.url}"\n'
        f'branch = "{repository.branch}"\n',
        encoding="utf-8",
    )


def badge_markdown(lesson: str, repository: Repository | None = None) -> str:
    """The "Open in Colab" badge for a lesson's student copy, or why there is none."""
    repository = repository or load_repository()
    if repository.is_placeholder:
        return (
            "*Open in Colab is not available for this copy of the course: its GitHub address "
            "has not been set yet. Work in JupyterLab (`make lab`), or ask your instructor for "
            "the course's Colab links.*"
        )
    path = repository.url.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/{repository.branch}/lessons/{lesson}/{lesson}.ipynb"
    return f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def colab_cell_source(repository: Repository | None = None) -> str:
    """The "Colab only" cell: install what Colab lacks, once; anywhere else do nothing.

    It runs before the kit is installed, so it uses only the standard library.
    ``#@title`` and the cell's ``cellView: form`` metadata make Colab show it folded
    under its title; JupyterLab folds it through ``jupyter.source_hidden``.
    """
    repository = repository or load_repository()
    if repository.is_placeholder:
        package = "None  # this copy of the course has no GitHub address yet"
    else:
        package = f'"tfrs-course @ git+{repository.url}@{repository.branch}"'
    return f'''#@title {COLAB_CELL_TITLE}
import os
import sys

if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
    import importlib.metadata
    import subprocess

    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # TFRS needs Keras 2; set before TensorFlow loads

    def _version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return ""

    _kit = os.environ.get("{PACKAGE_VARIABLE}") or {package}
    if not _kit and not _version("tfrs-course"):
        raise RuntimeError(
            "This copy of the course has no GitHub address set, so Colab cannot install its kit. "
            "Ask your instructor for the course's Colab links, or work in JupyterLab."
        )
    _tf_line = ".".join(_version("tensorflow").split(".")[:2])
    _wanted = {{
        "tf-keras": (_version("tf-keras").startswith(_tf_line + "."), f"tf-keras=={{_tf_line}}.*"),
        "tensorflow-recommenders": (_version("tensorflow-recommenders") == "0.7.7", "{TFRS_REQUIREMENT}"),
        "tfrs-course": (bool(_version("tfrs-course")), _kit),
    }}
    _missing = [requirement for ready, requirement in _wanted.values() if not ready]
    if _missing:
        print("Installing", ", ".join(_missing), "...")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *_missing], check=True)
    import tfrs_course.colab

    tfrs_course.colab.prepare_data()
'''


def prepare_data() -> None:
    """Download and verify the real Babyshop files once; fall back to the twin if that fails."""
    from tfrs_course.data import download
    from tfrs_course.data.loader import real_cache_is_valid
    from tfrs_course.paths import default_data_dir

    data_dir = default_data_dir()
    if real_cache_is_valid(data_dir):
        print(f"Colab set-up: ready (the real Babyshop data is cached in {download.real_cache_dir(data_dir)}).")
        return
    try:
        download.fetch_real_data(data_dir, progress=True)
    except (download.DownloadError, OSError) as error:
        print(f"Colab set-up: could not download the real data ({error}); the lessons will use the synthetic twin.")
    else:
        print("Colab set-up: ready (the real Babyshop data is downloaded and verified).")
