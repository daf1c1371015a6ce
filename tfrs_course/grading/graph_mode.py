"""Run student code in graph mode exactly as ``model.fit`` runs it in the lessons.

``model.fit`` traces its training step into a graph with AutoGraph switched on,
but Keras's own step function is on AutoGraph's do-not-convert list. So:

- code the step calls directly (a model's ``train_step`` and ``compute_loss``, and
  the loss functions they call) runs as written, unconverted: ``len()`` of a
  batch, ``.numpy()`` or a Python ``for`` over a tensor fail there;
- a layer's or model's ``call``, reached through ``Layer.__call__``, is converted:
  a Python ``if`` or ``for`` on tensors there becomes graph control flow.

A plain ``tf.function(f)`` would convert ``f`` and everything it calls (more
lenient than ``fit``), and ``tf.function(f, autograph=False)`` would convert
nothing (stricter). Tests that check "works in ``fit``" use :func:`as_fit_runs_it`,
so that a student's check in Jupyter, the grader and the lesson's ``fit`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def as_fit_runs_it(function: Callable[..., Any], input_signature: Sequence[Any]) -> Callable[..., Any]:
    """A graph function of ``function`` that converts what ``fit`` converts, and nothing else.

    Args:
        function: called with the graph's inputs; it and what it calls run
            unconverted, while layers' ``call`` methods are converted.
        input_signature: ``tf.TensorSpec`` structures, usually with an unknown
            batch size (``None``) as the lessons' batched datasets have.

    Returns:
        The ``tf.function``; call it with tensors matching the signature.
    """
    import tensorflow as tf

    # TensorFlow's marker for code AutoGraph has already handled: the function is then
    # called as it is, while AutoGraph stays on for the layers it calls (what Keras's
    # do-not-convert step function gets in fit).
    from tensorflow.python.autograph.impl.api import autograph_artifact

    def step(*inputs: Any) -> Any:
        return function(*inputs)

    return tf.function(autograph_artifact(step), input_signature=list(input_signature))
