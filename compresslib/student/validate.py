"""Validate that never says "Success!" for a notebook that did not run cleanly.

nbgrader 0.9.6's validator judges only the graded test cells. An ungraded cell (an experiment, a plot)
that raised, was interrupted, or ran past ``Execute.timeout`` (nbclient interrupts the kernel, nbgrader
appends a ``CellTimeoutError`` output and runs on) is not looked at, so Validate reported "Success!"
for a notebook whose sweep had been cut short. :class:`StrictValidator` also fails every code cell
with an error output. Warnings and other stderr output still pass (nbgrader's ``validate_all`` would
fail them, and honest code warns).

Two entry points, both reading the same nbgrader configuration as ``nbgrader validate``:

* ``python -m compresslib.student.validate NOTEBOOK...`` prints nbgrader's report and exits 1 when a
  notebook fails (the student kit's ``make validate``);
* the JupyterLab server extension ``compresslib.student.validate`` answers the Validate button at
  nbgrader's own URL; enable it instead of ``nbgrader.server_extensions.validate_assignment``.
"""

from __future__ import annotations

import glob
import sys
import traceback
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader.apps.validateapp import ValidateApp
from nbgrader.server_extensions.validate_assignment.handlers import (NbGraderVersionHandler,
                                                                     ValidateAssignmentHandler)
from nbgrader.validator import Validator
from traitlets import default


def errored(cell: NotebookNode) -> bool:
    """True when a code cell holds an error output (an exception, an interrupt, a timeout)."""
    return cell.cell_type == "code" and any(output.output_type == "error" for output in cell.outputs)


def passed(results: dict) -> bool:
    """True when ``Validator.validate``'s results mean "Success!" (nothing changed, nothing failed)."""
    return not any(results.get(key) for key in ("type_changed", "changed", "failed"))


class StrictValidator(Validator):
    """nbgrader's Validator, which also fails every code cell with an error output, graded or not."""

    last_results: dict | None = None

    def validate(self, filename: str) -> dict:
        self.last_results = super().validate(filename)
        return self.last_results

    def _get_failed_cells(self, nb: NotebookNode) -> list[NotebookNode]:
        graded = {id(cell) for cell in super()._get_failed_cells(nb)}
        return [cell for cell in nb.cells if id(cell) in graded or (not self.invert and errored(cell))]


class StrictValidateApp(ValidateApp):
    """``nbgrader validate`` with :class:`StrictValidator`; exit status 1 when any notebook fails."""

    name = "compresslib-validate"
    description = "Validate notebooks by running them; fail on any cell that errors, times out or is interrupted"

    @default("classes")
    def _classes_default(self):
        return [*super()._classes_default(), StrictValidator]

    def start(self) -> None:
        filenames = sorted({name for pattern in self.extra_args for name in glob.glob(pattern)})
        if not filenames:
            self.fail("Give the notebooks to validate: python -m compresslib.student.validate NOTEBOOK...")
        validator = StrictValidator(parent=self)
        failures = 0
        for filename in filenames:
            validator.last_results = None
            try:
                validator.validate_and_print(filename)
            except Exception:
                self.log.error(traceback.format_exc())
                self.log.error("could not validate %s", filename)
            failures += validator.last_results is None or not passed(validator.last_results)
        if failures:
            self.exit(1)


class StrictValidateHandler(ValidateAssignmentHandler):
    """The Validate button's request, answered by :class:`StrictValidator` (same answer format)."""

    def validate_notebook(self, path: str) -> dict:
        root = Path(self.root_dir).resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root):
            from tornado import web

            raise web.HTTPError(403, "Access denied: path outside allowed directory")
        try:
            results = StrictValidator(config=self.load_config()).validate(str(target))
        except Exception:
            self.log.error(traceback.format_exc())
            return {"success": False, "value": traceback.format_exc()}
        return {"success": True, "value": results}


def _jupyter_server_extension_points():
    return [{"module": "compresslib.student.validate"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    web_app = serverapp.web_app
    web_app.settings["root_dir"] = serverapp.root_dir
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [
        (url_path_join(base_url, "assignments/validate"), StrictValidateHandler),
        (url_path_join(base_url, "nbgrader_version"), NbGraderVersionHandler),
    ])
    serverapp.log.info("compresslib: Validate fails any cell that errors, times out or is interrupted")


def main(argv: list[str] | None = None) -> None:
    StrictValidateApp.launch_instance(argv=sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
