"""Benchmarks of the course kit: run ``python -m tfrs_course.benchmarks <name>``."""
