"""tfrs_course: the helper package of the TFRS retrieval course.

Importing it selects legacy Keras (``TF_USE_LEGACY_KERAS=1``) before TensorFlow
loads, because TensorFlow Recommenders 0.7.7 does not run on Keras 3.
"""

from tfrs_course.environment import configure as _configure_tensorflow

_configure_tensorflow()

__version__ = "0.1.0"
