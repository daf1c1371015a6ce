"""Student code runs in the grader's graph mode exactly as the lesson's ``model.fit`` runs it.

The code under test is defined the way the grader defines a student's cells
(:func:`tfrs_course.grading.program.run_cell`), so its source exists only in
memory, as a Jupyter cell's does. Each case is run both ways, by
:func:`tfrs_course.grading.graph_mode.as_fit_runs_it` and by a real ``fit``, and
the two must agree: a tower whose ``call`` needs AutoGraph trains in both, a
loss with a Python loop over a tensor fails in both.
"""

import inspect

import numpy as np
import pytest

import tfrs_course  # noqa: F401  (legacy Keras before TensorFlow loads)
from tfrs_course.grading.graph_mode import as_fit_runs_it
from tfrs_course.grading.program import run_cell
from tfrs_course.grading.student_code import StudentCode, StudentCodeError

tf = pytest.importorskip("tensorflow")

CELLS = {
    "tower": '''
class Tower(tf.keras.Model):
    """Needs AutoGraph: a Python `if` on a tensor, and len() of a batch of unknown size."""

    def __init__(self):
        super().__init__()
        self.dense = tf.keras.layers.Dense(2)

    def call(self, x):
        rows = len(x)
        if tf.reduce_sum(x) > 0:
            return tf.reshape(self.dense(x), [rows, 2])
        return -self.dense(x)
''',
    "loop_loss": '''
def loop_loss(first, second):
    """A Python loop over a tensor: AutoGraph could convert it, but fit calls losses unconverted."""
    total = tf.constant(0.0)
    for row in tf.range(tf.shape(first)[0]):
        total += tf.reduce_sum(first[row] * second[row])
    return total
''',
    "plain_loss": """
def plain_loss(first, second):
    return tf.reduce_sum(first * second)
""",
    "model": """
class Model(tf.keras.Model):
    def __init__(self, loss):
        super().__init__()
        self.tower = Tower()
        self.loss_function = loss

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            vectors = self.tower(batch)
            loss = self.loss_function(vectors, vectors)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""",
}

BATCH = tf.TensorSpec([None, 3], tf.float32)


@pytest.fixture(scope="module")
def cells():
    namespace = {"tf": tf}
    for label, source in CELLS.items():
        assert run_cell(source, namespace, label) is None
    return namespace


def _fits(cells, loss_name: str) -> bool:
    model = cells["Model"](cells[loss_name])
    model.compile(optimizer="sgd")
    rows = tf.data.Dataset.from_tensor_slices(np.ones((8, 3), np.float32)).batch(4)
    try:
        model.fit(rows, epochs=1, verbose=0)
    except (TypeError, tf.errors.OperatorNotAllowedInGraphError):
        return False
    return True


def _runs(function, *specs) -> bool:
    inputs = [tf.ones([4, 3])] * len(specs)
    try:
        as_fit_runs_it(function, specs)(*inputs)
    except (TypeError, tf.errors.OperatorNotAllowedInGraphError):
        return False
    return True


def test_a_cells_source_is_readable_as_in_jupyter(cells):
    assert inspect.getsource(cells["Tower"].call).strip().startswith("def call(self, x):")
    assert "Python loop over a tensor" in inspect.getsource(cells["loop_loss"])


def test_two_notebooks_cells_of_one_name_keep_their_own_source():
    namespace = {}
    run_cell("def answer():\n    return 1\n", namespace, "same_name")
    first = namespace["answer"]
    run_cell("\n\ndef answer():\n    return 2\n", namespace, "same_name")
    assert "return 1" in inspect.getsource(first)
    assert "return 2" in inspect.getsource(namespace["answer"])
    assert first.__code__.co_filename != namespace["answer"].__code__.co_filename
    # Messages still name the cell as the student knows it.
    run_cell("def broken():\n    return 1 / 0\n", namespace, "same_name")
    with pytest.raises(StudentCodeError) as raised:
        StudentCode(namespace).call("broken")
    assert 'File "<cell same_name>", line 2' in str(raised.value), str(raised.value)


def test_a_tower_that_needs_autograph_runs_as_in_fit(cells):
    tower = cells["Tower"]()
    assert _fits(cells, "plain_loss"), "fit converts a layer's call: this tower trains"
    assert _runs(tower, BATCH)


def test_a_loss_with_a_python_loop_fails_as_in_fit(cells):
    assert not _fits(cells, "loop_loss"), "fit calls the loss from train_step unconverted: it fails"
    assert not _runs(cells["loop_loss"], BATCH, BATCH)
    assert _runs(cells["plain_loss"], BATCH, BATCH)
