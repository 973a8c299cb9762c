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


def test_each_listed_notebook_cites_its_run_between_markers():
    for name, run in readme.NOTEBOOKS.items():
        text = (paths.REPOSITORY / name).read_text(encoding="utf-8")
        keys = [m["key"] for m in readme.NOTEBOOK_SECTION.finditer(text) if m["run"] == run]
        assert keys == [name.split("/")[1][:2]], name  # one paragraph, keyed by the notebook's number


def test_a_notebook_paragraph_is_the_runs_evidence_as_markdown_comment_lines(stored):
    from compresslib.runs import distill

    text = ("# %% [markdown]\n# ## What the evidence shows\n#\n# <!-- results:distill:02 -->\n# stale 99.9%\n"
            "# <!-- /results:distill:02 -->\n\n# %%\nx = 1\n")
    rendered = readme.render_notebook(text, results_folder=lambda run: stored / run)
    results = json.loads(paths.results_json(stored / "distill").read_text())
    body = distill.notebook_evidence(results, "02")
    expected = "".join(f"# {line}\n" if line else "#\n" for line in body.splitlines())
    assert rendered == text.replace("# stale 99.9%\n", expected)
    assert "Retention" in body and "Label-scarce" in body
    layer_arms = any(c["key"] == "every_other_beats_first_half" for c in results["claims"])
    assert ("Which layers" in body) == layer_arms  # the layer paragraph only where the run had those arms
    with pytest.raises(ValueError, match="notebook is one of"):
        distill.notebook_evidence(results, "03")


def test_a_changed_compress_accuracy_moves_the_frontier_in_its_section_only(stored):
    """The compression section is computed from the per-seed accuracies: a student int8 made the most accurate
    model enters the Pareto frontier and wins the budgets it fits, and only that section changes."""
    text = paths.readme().read_text(encoding="utf-8")
    results = json.loads(paths.results_json(stored / "compress").read_text())
    changed = copy.deepcopy(results)
    best = max(r["test_accuracy"] for runs in results["runs"].values() for variants in runs.values() for r in variants)
    for run in changed["runs"]["student"]["int8"]:
        run["test_accuracy"] = min(1.0, best + 0.05)
    changed.update(readme.run_of("compress").summarise(changed))
    assert "student int8" in changed["frontier"] and "student int8" not in results["frontier"]
    paths.results_json(stored / "compress").write_text(json.dumps(changed))
    rendered = readme.render(text, results_folder=lambda run: stored / run)
    before, after = text.splitlines(), rendered.splitlines()
    start, end = before.index("<!-- results:compress -->"), before.index("<!-- /results:compress -->")
    assert before[:start] == after[:start] and before[end:] == after[after.index("<!-- /results:compress -->"):]
    section = "\n".join(after[start:after.index("<!-- /results:compress -->")])
    assert "the most accurate is student int8" in section
    assert f"majority class scores {100 * results['majority_class']['test']:.1f}%" in section


def test_the_compress_section_links_files_that_exist():
    results = json.loads(paths.results_json(paths.docs_results("compress")).read_text())
    for name in ["results.json", "results.md", *results["figures"]]:
        assert (paths.docs_results("compress") / name).stat().st_size > 0
    assert "docs/results/compress/frontier.png" in paths.readme().read_text(encoding="utf-8")
