# The course's commands. `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Stamp file: reinstall when the package's declared dependencies change.
INSTALLED := $(VENV)/.installed

.PHONY: help install demo test lint lab lessons check-lessons bench bench-data bench-grading bench-lessons bench-serving clean

help:
	@echo "make demo   - set up .venv, build the offline data, run the course, print results"
	@echo "make test   - set up .venv if needed, lint, run the whole test suite"
	@echo "make lab    - open JupyterLab on lessons/ with the course kernel"
	@echo "make lessons       - regenerate lessons/ from solutions/"
	@echo "make check-lessons - fail if lessons/ is stale or leaks solutions"
	@echo "make bench  - print benchmark figures"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required: set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[course,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tfrs-course)" >/dev/null
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/tfrs-course demo

lint: $(INSTALLED)
	$(BIN)/ruff check tfrs_course autograder tests solutions lessons

# The offline twin is built once, before the parallel tests would race to build it.
test: $(INSTALLED) lint
	$(BIN)/tfrs-course data synth
	$(BIN)/python -m pytest

lab: $(INSTALLED)
	$(BIN)/jupyter lab --notebook-dir=lessons

lessons: $(INSTALLED)
	$(BIN)/tfrs-course lessons build

check-lessons: $(INSTALLED)
	$(BIN)/tfrs-course lessons check

bench: bench-data bench-grading bench-lessons bench-serving

bench-data: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks data

bench-serving: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks serving

bench-grading: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks grading 24

bench-lessons: $(INSTALLED)
	$(BIN)/python -m tfrs_course.benchmarks lessons

clean:
	rm -rf $(VENV) data/synthetic data/results
