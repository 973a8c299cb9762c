"""nbgrader settings of the student kit.

`make install` copies this file into the kit's environment (.venv/etc/jupyter/), where both the Validate
button and `make validate` (`nbgrader validate` too) find it wherever JupyterLab was started or the
notebook lies. The notebooks' experiments run at their `quick` size under Validate without any setting
here: nbgrader sets NBGRADER_EXECUTION, and compresslib.profiles.notebook_profile() reads it.
"""

import os

c = get_config()  # noqa: F821  (nbgrader injects get_config)

# Validate runs every cell. A cell still running after this many seconds is interrupted, and the
# validation fails on it (compresslib.student.validate fails any cell that errors, times out or is
# interrupted, graded or not). At the quick size every cell takes seconds.
c.Execute.timeout = int(os.environ.get("COMPRESSLIB_VALIDATE_TIMEOUT", "120"))
c.Execute.interrupt_on_timeout = True
