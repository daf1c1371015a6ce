"""Google Colab: the badge and set-up code that every lesson starts with.

The repository address lives here and only here; ``make lessons`` writes it
into each lesson's badge and setup cell. Publish the kit somewhere else by
changing :data:`REPOSITORY` and :data:`BRANCH` and running ``make lessons``.
"""

from __future__ import annotations

REPOSITORY = "https://github.com/tfrs-course/tfrs-course"
BRANCH = "main"
# Lets a workshop host (or a test) install the kit from a wheel or a mirror instead.
PACKAGE_VARIABLE = "TFRS_COURSE_PACKAGE"
TFRS_REQUIREMENT = "tensorflow-recommenders==0.7.7"


def badge_markdown(lesson: str) -> str:
    """The "Open in Colab" badge for a lesson's student copy."""
    path = REPOSITORY.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/lessons/{lesson}/{lesson}.ipynb"
    return f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def bootstrap_source() -> str:
    """The first lines of every setup cell: install what Colab lacks, once; elsewhere do nothing.

    It must run before the kit is installed, so it uses only the standard library.
    """
    package = f"tfrs-course @ git+{REPOSITORY}@{BRANCH}"
    return f'''# In Google Colab this installs the course kit (the first time only) and fetches the data.
# Anywhere else it does nothing.
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # TFRS needs Keras 2; set before TensorFlow loads
if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
    import importlib.metadata
    import subprocess

    def _version(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return ""

    _tf_line = ".".join(_version("tensorflow").split(".")[:2])
    _wanted = {{
        "tf-keras": (_version("tf-keras").startswith(_tf_line + "."), f"tf-keras=={{_tf_line}}.*"),
        "tensorflow-recommenders": (_version("tensorflow-recommenders") == "0.7.7", "{TFRS_REQUIREMENT}"),
        "tfrs-course": (bool(_version("tfrs-course")), os.environ.get("{PACKAGE_VARIABLE}", "{package}")),
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

