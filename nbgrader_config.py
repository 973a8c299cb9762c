"""nbgrader configuration: the repository root is the course directory.

solutions/<assignment>/  the source (solution regions, visible and hidden tests)
notebooks/<assignment>/  the student release, made by `nbgrader generate_assignment`
submitted/<student>/<assignment>/  collected submissions (not in git)
autograded/, feedback/, gradebook.db, grades.csv  made by grading (not in git)

Autograding (`nbgrader autograde`, and `python -m compresslib.course grade`, which runs many at once)
executes each submission in the bubblewrap sandbox with the student kit on its path, and scores each
test cell from what its hidden tests report, compared with the fixtures in this process
(compresslib.grading.nbgrader_plugins). Without bubblewrap, autograde refuses to run unless
`c.SandboxedExecute.unsandboxed = True` (trusted submissions only).
"""

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern, LimitOutput, SaveAutoGrades

from compresslib.grading.nbgrader_plugins import SANITIZE_PREPROCESSORS, SandboxedExecute, ScoreCaptures

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
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Grading: cell metadata restored from the gradebook, the sandbox executes, the kit's scorer decides
# (see the docstring).
c.Autograde.sanitize_preprocessors = SANITIZE_PREPROCESSORS
c.Autograde.autograde_preprocessors = [SandboxedExecute, ScoreCaptures, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.SandboxedExecute.cell_timeout = 120
c.SandboxedExecute.notebook_timeout = 600
# Feedback pages show what a submission printed: strip scripts and active HTML from them.
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, SanitizeHTML]
c.SanitizeHTML.enabled = True
# `nbgrader validate` (the instructor checking a source or a submission) runs notebooks plainly.
c.Execute.timeout = 600
