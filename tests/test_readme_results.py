"""The README's reference results are generated from docs/results/<run>/results.json and must agree with them."""

import copy
import json
import shutil

import pytest

from compresslib.runs import paths, readme


def test_the_readme_agrees_with_the_stored_results():
    """If this fails, run `python -m compresslib.runs readme` (or `publish <run>` after a new run)."""
    assert readme.differences() == ""


@pytest.fixture
def stored(tmp_path):
    """A copy of docs/results/<run>/results.json for every run, in tmp_path/<run>/."""
    for run in readme.RUN_MODULES:
        (tmp_path / run).mkdir()
        shutil.copyfile(paths.results_json(paths.docs_results(run)), paths.results_json(tmp_path / run))
    return tmp_path


def test_a_changed_number_changes_only_its_section(stored):
    text = paths.readme().read_text(encoding="utf-8")
    results = json.loads(paths.results_json(stored / "distill").read_text())
    changed = copy.deepcopy(results)
    claim = results["claims"][0]  # KD against hard labels at the scarcest budget
    a, b = changed["students"][claim["a"]], changed["students"][claim["b"]]
    for seed, run in zip(a["seeds"], a["runs"]):  # exactly 5 points better than b at every shared seed
        if seed in b["seeds"]:
            run["test_accuracy"] = b["runs"][b["seeds"].index(seed)]["test_accuracy"] + 0.05
    a["test_accuracy"] = [run["test_accuracy"] for run in a["runs"]]
    changed.update(readme.run_of("distill").summarise(changed))
    paths.results_json(stored / "distill").write_text(json.dumps(changed))
    rendered = readme.render(text, results_folder=lambda run: stored / run)
    assert rendered != text
    before, after = text.splitlines(), rendered.splitlines()
    start, end = before.index("<!-- results:distill -->"), before.index("<!-- /results:distill -->")
    assert before[:start] == after[:start]
    assert before[end:] == after[after.index("<!-- /results:distill -->"):]
    assert f"{claim['a']} beats {claim['b']}: +5.0 points" in rendered  # the claim now holds, with the new numbers


def test_only_text_between_markers_is_generated(stored):
    text = "intro\n<!-- results:tickets -->\nstale\n<!-- /results:tickets -->\noutro, hand-written 17.5\n"
    rendered = readme.render(text, results_folder=lambda run: stored / run)
    assert rendered.startswith("intro\n<!-- results:tickets -->\nProduced by `python -m compresslib.runs tickets")
    assert rendered.endswith("<!-- /results:tickets -->\noutro, hand-written 17.5\n") and "stale" not in rendered


def test_unknown_runs_and_missing_markers_are_named():
    with pytest.raises(ValueError, match="unknown run 'quantize'"):
        readme.render("<!-- results:quantize -->\n<!-- /results:quantize -->\n")
    with pytest.raises(ValueError, match="no <!-- results:<run> -->"):
        readme.render("no markers here\n")
