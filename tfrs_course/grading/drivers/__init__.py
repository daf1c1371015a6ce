"""Drivers: trusted code that exercises a student's classes and models for the tests.

A driver is a module-level function ``driver(lookup, *args, **kwargs)`` that
gets the student's objects with ``lookup("Name")``, uses them, and returns
plain data (numbers, numpy arrays, lists, dicts). Tests run the same driver on
the reference solution and compare. One module per lesson.
"""
