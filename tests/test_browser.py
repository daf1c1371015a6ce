"""A student's first exercise, in a real browser: JupyterLab as `make lab` starts it, driven by Chromium.

`make lab` serves a scratch copy of lesson 1 on a free loopback port with a token.
Headless Chromium (Debian's `chromium` package, driven by Playwright) opens the
lesson, runs its cells down to the first exercise's check, and sees the check
report the stub as not written yet; a wrong answer gets a failing test with a
hint; the right answer passes. A screenshot of each step is saved under
data/browser-test/. Run it with `make test-browser` (`.ci/run` does, after `make test`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tfrs_course import layout
from tfrs_course.notebooks import solution_source

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
LESSON = "01_baseline_metrics"
EXERCISE = "select_top_users"
CHROMIUM = Path(os.environ.get("TFRS_COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # Chromium's sandbox cannot start as root or in most containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "data" / "browser-test"
WRONG_ANSWER = (layout.lesson("01_baseline_metrics").fixtures / "top_users_no_tie_break.py").read_text()
CELL_SECONDS = 300  # the first check loads the data and the tests; generous for a loaded machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # the process ended while we looked
            if text in command:
                found.append(int(entry.name))
    return found


@pytest.fixture
def jupyterlab(tmp_path):
    """`make lab` on a scratch copy of lesson 1; yields (base URL, token). Stops everything it started."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)")
    served = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons" / LESSON, served / LESSON)
    runtime = tmp_path / "runtime"
    port, token = _free_port(), secrets.token_hex(16)
    environment = {
        **os.environ,
        "HOME": str(tmp_path / "home"),  # a first-time student: no saved workspace or settings
        "JUPYTER_RUNTIME_DIR": str(runtime),
    }
    lab_args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.token={token} --ServerApp.port_retries=0"
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_DIR={served}", f"LAB_ARGS={lab_args}"],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                    json.load(response)
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(1)
        yield base, token, tmp_path / "lab.log"
    finally:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
            server.wait(timeout=60)
        except (urllib.error.URLError, ConnectionError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        # The kernels were started with connection files in our runtime folder: none may survive.
        deadline = time.monotonic() + 30
        while _processes_mentioning(str(runtime)) and time.monotonic() < deadline:
            time.sleep(1)
        assert not _processes_mentioning(str(runtime)), "a kernel outlived JupyterLab"


def _cell_index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    for index, cell in enumerate(notebook.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    raise AssertionError(f"{LESSON} has no cell {grade_id!r}")


def _prompt(cell) -> str:
    return cell.locator(".jp-InputPrompt").first.inner_text().strip()


def _wait_until_run(cell, before: str) -> None:
    """Wait until the cell's prompt shows an execution number other than ``before``."""
    deadline = time.monotonic() + CELL_SECONDS
    while not re.fullmatch(r"\[\d+\]:", _prompt(cell)) or _prompt(cell) == before:
        assert time.monotonic() < deadline, f"the cell did not finish in {CELL_SECONDS} s (prompt {_prompt(cell)!r})"
        time.sleep(0.5)


def _run_and_wait(page, cell, before: str) -> str:
    """Press Shift+Enter on the active cell, wait until this cell has run, return its output text."""
    page.keyboard.press("Shift+Enter")
    _wait_until_run(cell, before)
    return cell.locator(".jp-OutputArea").inner_text()


def _screenshot(page, cell, name: str) -> None:
    cell.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _replace_answer(page, cell, code: str) -> None:
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    # insert_text types nothing key by key, so the editor adds no indentation or brackets of its own.
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")  # command mode: Shift+Enter runs the cell


def test_first_exercise_in_a_real_browser(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, lab_log = jupyterlab
    # nbgrader's formgrader is an instructor's tool: `make lab` does not serve it.
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{base}/formgrader?token={token}", timeout=10)
    notebook = nbformat.read(REPO / "lessons" / LESSON / f"{LESSON}.ipynb", as_version=4)
    answer_index = _cell_index(notebook, EXERCISE)
    check_index = _cell_index(notebook, f"{EXERCISE}-visible-tests")
    colab_index = _cell_index(notebook, "colab_setup")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # empty: a browser that has never seen JupyterLab
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        page = browser.new_page()  # if anything fails, leaving sync_playwright() closes the browser
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{base}/lab/tree/{LESSON}/{LESSON}.ipynb?token={token}")
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            cells.nth(check_index).wait_for()
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=120_000)

            # Students see the lesson, not nbgrader's instructor tools or the Colab install code.
            menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
            assert "File" in menus and not any("nbgrader" in menu.lower() for menu in menus), menus
            colab_cell = cells.nth(colab_index)
            assert colab_cell.locator(".jp-InputPlaceholder").count() == 1, "the Colab cell is not folded"
            assert "subprocess" not in colab_cell.inner_text()
            _screenshot(page, cells.nth(0), "1-opened")

            # Run every cell above the check, one Shift+Enter each, as a student does. The kernel
            # runs them in order, so when the last of them has its number, all of them have run.
            cells.nth(0).click()
            page.keyboard.press("Escape")
            for _ in range(check_index):
                page.keyboard.press("Shift+Enter")
            last_code = max(i for i in range(check_index) if notebook.cells[i].cell_type == "code")
            _wait_until_run(cells.nth(last_code), "")
            for index in range(check_index):
                output = cells.nth(index).locator(".jp-OutputArea").all_inner_texts()
                assert not any("Traceback" in text or "Error" in text for text in output), f"cell {index}: {output}"
            check_cell = cells.nth(check_index)
            report = _run_and_wait(page, check_cell, "")
            _screenshot(page, check_cell, "2-stub")
            assert "not written yet" in report, report

            _replace_answer(page, cells.nth(answer_index), WRONG_ANSWER)
            _run_and_wait(page, cells.nth(answer_index), _prompt(cells.nth(answer_index)))
            report = _run_and_wait(page, check_cell, _prompt(check_cell))
            _screenshot(page, check_cell, "3-wrong")
            assert "FAIL" in report and "not written yet" not in report, report
            assert "tie" in report.lower(), report  # the hint names what is wrong: the order of ties

            _replace_answer(page, cells.nth(answer_index), solution_source(LESSON, EXERCISE))
            _run_and_wait(page, cells.nth(answer_index), _prompt(cells.nth(answer_index)))
            report = _run_and_wait(page, check_cell, _prompt(check_cell))
            _screenshot(page, check_cell, "4-right")
            assert page.get_by_text("Jupyter news").count() == 0, "the news prompt is shown to students"
            assert "FAIL" not in report and "All visible tests pass" in report, report
        except Exception:
            page.screenshot(path=str(SCREENSHOTS / "failed.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert "Traceback" not in lab_log.read_text()
