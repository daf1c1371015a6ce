# The course's commands. Students: `make install`, then `make lab`. Everyone: `make help`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Stamp file: reinstall when the package's declared dependencies change.
INSTALLED := $(VENV)/.installed
# Jupyter refuses to start as root without --allow-root; containers, workshop VMs and CI run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
# Students' JupyterLab: nbgrader's panels and menus (formgrader, create assignment, course
# list) are for instructors, so this extra config folder switches them off.
STUDENT_JUPYTER_CONFIG := $(CURDIR)/jupyter-config/student
# The browser test serves a scratch copy of the lessons on a free port: `make lab LAB_DIR=... LAB_ARGS=...`.
LAB_DIR ?= lessons
LAB_ARGS ?=

.PHONY: help install demo test test-fast test-browser lint lab lab-instructor nbgrader lessons check-lessons \
	bench bench-data bench-grading bench-lessons bench-serving clean

help:
	@echo "Students:"
	@echo "  make install        - create .venv with the kit and its pinned stack (once; several minutes)"
	@echo "  make lab            - open JupyterLab on lessons/ (blocks; Ctrl-C twice to stop)"
	@echo "Everyone:"
	@echo "  make demo           - run every lesson end to end and print the results table"
	@echo "  make test           - lint, then the whole test suite (what .ci/run runs)"
	@echo "  make test-fast      - the suite without the slow tests (pytest -m 'not slow')"
	@echo "  make test-browser   - open lesson 1 in headless Chromium and do its first exercise"
	@echo "  make lint           - ruff check over the kit, tests, solutions and lessons; ruff format --check"
	@echo "Instructors:"
	@echo "  make lab-instructor - JupyterLab on the whole course, with nbgrader's instructor panels"
	@echo "  make nbgrader ARGS=\"autograde 01_baseline_metrics\" - any nbgrader command, run as the course needs it"
	@echo "  make lessons        - regenerate solutions/*.ipynb and lessons/ from solutions/*/*.py"
	@echo "  make check-lessons  - fail if lessons/ is stale or leaks solutions"
	@echo "  make bench          - print benchmark figures (bench-data, bench-grading, bench-lessons, bench-serving)"
	@echo "  make clean          - remove .venv and the built data"
	@echo "Grading (see docs/instructor.md): .venv/bin/tfrs-course grade | grade-merge | gradescope"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required: set PYTHON=/path/to/python3.11"; exit 1; }
	@echo "[1/3] Creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip's own output is the progress: the first install downloads about 2 GB of wheels.
$(INSTALLED): $(BIN)/python pyproject.toml
	@echo "[2/3] Installing the kit and its pinned stack (TensorFlow, TFRS, JupyterLab, nbgrader...)"
	$(BIN)/python -m pip install --progress-bar on -e ".[course,dev]"
	@echo "[3/3] Registering the notebook kernel \"Python 3 (tfrs-course)\""
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tfrs-course)" >/dev/null
	touch $(INSTALLED)
	@echo "Installed. Next: make lab"

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/tfrs-course demo

# Generated notebooks and student-style answer fixtures are not formatted (see pyproject.toml).
lint: $(INSTALLED)
	$(BIN)/ruff check tfrs_course autograder tests solutions lessons
	$(BIN)/ruff format --check tfrs_course autograder tests solutions

# The offline twin is built once, before the parallel tests would race to build it.
test: $(INSTALLED) lint
	$(BIN)/tfrs-course data synth
	$(BIN)/python -m pytest

test-fast: $(INSTALLED) lint
	$(BIN)/tfrs-course data synth
	$(BIN)/python -m pytest -m "not slow"

# Needs Chromium at /usr/bin/chromium (Debian/Ubuntu: apt-get install chromium); .ci/run installs it.
test-browser: $(INSTALLED)
	$(BIN)/tfrs-course data synth
	$(BIN)/python -m pytest -n 0 -m browser tests/test_browser.py

lab: $(INSTALLED)
	@echo "Starting JupyterLab on $(LAB_DIR)/. Open the http://127.0.0.1:8888/lab?token=... address it prints"
	@echo "(your browser may open it for you). This terminal stays busy while JupyterLab runs:"
	@echo "press Ctrl-C twice to stop it. Save your notebooks first."
	JUPYTER_CONFIG_PATH="$(STUDENT_JUPYTER_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab --notebook-dir="$(LAB_DIR)" $(ALLOW_ROOT) $(LAB_ARGS)

# nbgrader runs `alembic` (its gradebook's database tool) from PATH: the kit's environment goes
# first, or a command such as generate_assignment removes the lesson's student copy and fails.
NBGRADER_PATH := PATH="$(abspath $(BIN)):$$PATH"

lab-instructor: $(INSTALLED)
	$(NBGRADER_PATH) $(BIN)/jupyter lab --notebook-dir=. $(ALLOW_ROOT)

# generate_assignment rewrites lessons/ in nbgrader's own JSON layout (same cells, other
# formatting); rebuilding them afterwards keeps `make check-lessons` and git clean.
nbgrader: $(INSTALLED)
	@test -n "$(ARGS)" || { echo 'Say which command: make nbgrader ARGS="generate_assignment 01_baseline_metrics --force"'; exit 2; }
	$(NBGRADER_PATH) $(BIN)/nbgrader $(ARGS)
	$(if $(findstring generate_assignment,$(ARGS)),$(BIN)/tfrs-course lessons build)

lessons: $(INSTALLED)
	$(BIN)/tfrs-course lessons build

check-lessons: $(INSTALLED)
	$(BIN)/tfrs-course lessons check

bench: bench-data bench-grading bench-lessons bench-serving

bench-data: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks data

bench-serving: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks serving

# Submissions per lesson: `make bench-grading SUBMISSIONS=24` for a bigger class (nbgrader is the slow side).
# FULL_NOTEBOOKS=1: nbgrader runs the notebooks with the lessons' own parameters, as students submit them
# (by default they are cut to 300 users and one epoch, which makes nbgrader faster than it is in a class).
SUBMISSIONS ?= 4
FULL_NOTEBOOKS ?=
bench-grading: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks grading $(SUBMISSIONS) $(if $(FULL_NOTEBOOKS),--full-notebooks)

bench-lessons: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks lessons

clean:
	rm -rf $(VENV) data/synthetic data/results
