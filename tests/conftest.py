"""Shared test set-up.

Importing tfrs_course first selects legacy Keras (TF_USE_LEGACY_KERAS=1) before any
test module imports TensorFlow, exactly as a lesson's setup cell does.
"""

import tfrs_course  # noqa: F401
