"""Babyshop data: verified downloads of the real files and an offline synthetic twin."""

from tfrs_course.data.loader import BabyshopData, load_babyshop
from tfrs_course.data.schema import DataValidationError

__all__ = ["BabyshopData", "DataValidationError", "load_babyshop"]
