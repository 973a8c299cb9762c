"""What the notebooks' graded test cells call: fixture comparison and diagnostic messages."""

from compresslib.grading.core import GradingError, load_fixture

__all__ = ["GradingError", "load_fixture"]
