"""nbgrader configuration: the repository root is the course directory.

solutions/<assignment>/  the source (solution regions, visible and hidden tests)
notebooks/<assignment>/  the student release, made by `nbgrader generate_assignment`
submitted/<student>/<assignment>/  collected submissions (not in git)
autograded/, feedback/, gradebook.db, grades.csv  made by grading (not in git)
"""

import os

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "compression-course-kit"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# Only the notebooks travel to students (data and models come from compresslib): the jupytext sources
# and the wrong-answer catalogs beside the solutions stay with the instructor.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.md"]

# A student may delete a graded cell: put it back from the gradebook and grade it with the original tests.
c.OverwriteCells.add_missing_cells = True
# Reference runs on a CPU take seconds per cell; give slow machines room.
c.ExecutePreprocessor.timeout = 600
c.Execute.timeout = 600
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Grading (autograde, validate) runs each notebook's ungraded experiment cells (fine-tuning, sweeps) at
# the tiny size the notebooks read from COMPRESSLIB_PROFILE: the graded cells and their tests are the
# same, and a submission takes seconds instead of minutes. COMPRESSLIB_PROFILE=full grades at full size.
os.environ.setdefault("COMPRESSLIB_PROFILE", "tiny")
