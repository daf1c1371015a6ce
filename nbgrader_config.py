"""nbgrader on this course's layout: masters in solutions/, student copies in lessons/.

Run nbgrader from the repository root (the folder of this file), through make, which
puts the kit's environment on PATH (nbgrader runs `alembic` from it):
    make nbgrader ARGS="generate_assignment 01_baseline_metrics --force"
    make nbgrader ARGS="autograde 01_baseline_metrics"
    make nbgrader ARGS="generate_feedback 01_baseline_metrics"
    make nbgrader ARGS=export
Submissions go in submitted/<student_id>/<lesson>/<lesson>.ipynb.
"""

c = get_config()  # noqa: F821 - nbgrader defines get_config when it loads this file

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
# Lessons are built from solutions/ by `tfrs-course lessons build`; nbgrader must
# not copy the text form of the masters or anything else into lessons/.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.py", "*.md"]
c.ClearSolutions.code_stub = {
    "python": 'raise NotImplementedError("Write this function: its docstring says what to return.")'
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Test cells use the course's check(); give the kernel time to import TensorFlow.
c.Execute.timeout = 600
c.ExecutePreprocessor.timeout = 600
