"""The runs' skeleton without training: typed profiles and their CLI, the folder rule, the report's plots."""

import argparse
from dataclasses import dataclass, replace

import numpy as np
import pytest

from compresslib.runs import distill, hparams, paths, report, runner, tickets
from compresslib.runs.hparams import Profile, option


@dataclass(frozen=True)
class ToyProfile(Profile):
    lr: float = option(1e-4, "peak learning rate (10% warm-up)")
    seeds: tuple[int, ...] = option((0,), "seeds, paired across arms")
    train_examples: int | None = option(100, "training snippets (all: the whole split)")
    freeze: bool = option(True, "freeze the embeddings")
    loss: str = option("cosine", "which loss")


TOYS = {"quick": ToyProfile(name="quick"), "cpu": ToyProfile(name="cpu", lr=2e-4, seeds=(0, 1, 2), train_examples=None)}


def parse(argv):
    parser = argparse.ArgumentParser()
    hparams.add_arguments(parser, TOYS)
    return parser, parser.parse_args(argv)


def test_every_cli_field_becomes_an_option_whose_help_shows_each_profile():
    parser, _ = parse([])
    text = parser.format_help()
    for flag in ("--lr", "--seeds", "--train-examples", "--freeze", "--no-freeze", "--loss"):
        assert flag in text
    assert "peak learning rate (10% warm-up) [quick: 0.0001, cpu: 0.0002]" in " ".join(text.split())
    assert "--name" not in text and "--notes" not in text  # the profile's word and notes are not settings


def test_no_option_keeps_the_profile_and_its_folder_name():
    _, args = parse([])
    assert hparams.from_arguments(args, TOYS["cpu"]) is TOYS["cpu"]
    _, args = parse(["--lr", "0.0002"])
    assert hparams.from_arguments(args, TOYS["cpu"]) is TOYS["cpu"]  # the same value is no change


def test_options_override_typed_values_and_rename_the_profile():
    _, args = parse(["--seeds", "3", "4", "--train-examples", "all", "--no-freeze", "--lr", "5e-5"])
    profile = hparams.from_arguments(args, TOYS["quick"])
    assert (profile.seeds, profile.train_examples, profile.freeze, profile.lr) == ((3, 4), None, False, 5e-5)
    assert profile.name == "quick+freeze=False+lr=5e-05+seeds=3,4+train_examples=all"


def test_the_recorded_config_is_plain_json_of_every_field():
    config = TOYS["cpu"].config()
    assert config == {"name": "cpu", "notes": [], "lr": 2e-4, "seeds": [0, 1, 2], "train_examples": None,
                      "freeze": True, "loss": "cosine"}
    assert set(ToyProfile.help()) == set(config)


def test_the_runs_profiles_are_complete_and_named_by_their_key():
    for profiles in (distill.PROFILES, tickets.PROFILES):
        hparams.check_profiles(profiles)
        assert set(profiles) == {"quick", "cpu", "gpu"}
    with pytest.raises(ValueError, match="must agree"):
        hparams.check_profiles({"cpu": replace(TOYS["cpu"], name="quick")})


def test_a_field_without_help_or_of_an_unsupported_type_is_refused():
    with pytest.raises(ValueError, match="help"):
        option(1, "")

    @dataclass(frozen=True)
    class Bad(Profile):
        table: dict = option(None, "a dict cannot be a command-line option")

    with pytest.raises(TypeError, match="profile fields must be"):
        hparams.add_arguments(argparse.ArgumentParser(), {"quick": Bad(name="quick")})


def test_run_folders_follow_one_rule_and_honour_compresslib_runs(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPRESSLIB_RUNS", raising=False)
    assert paths.run_dir("tickets").as_posix() == "runs/tickets"
    monkeypatch.setenv("COMPRESSLIB_RUNS", str(tmp_path))
    folder = paths.profile_dir(paths.run_dir("distill"), "cpu")
    assert folder == tmp_path / "distill" / "cpu"
    assert paths.student_json(folder, "layer-skip init + KD", 2) == folder / "students" / "layer_skip_init_kd__seed2.json"
    assert paths.baseline_json(folder, 1, "rp", 1) == folder / "seed1" / "rp_round01.json"
    assert paths.docs_results("distill") == paths.REPOSITORY / "docs" / "results" / "distill"


def test_the_sparsity_plot_joins_only_measured_points(tmp_path):
    """No line from the dense model at 0% to the first pruned sparsity: nothing was measured in between."""
    curves = {"IMP": {0.5: {"mean": 0.76, "std": 0.01}, 0.75: {"mean": 0.70, "std": 0.001}},
              "RP": {0.75: {"mean": 0.56, "std": None}}}
    fig = report.accuracy_vs_sparsity(curves, tmp_path / "a.png", title="t", full={"mean": 0.746, "std": 0.017},
                                      majority=0.564)
    ax = fig.axes[0]
    drawn = {container.get_label(): container.lines[0] for container in ax.containers}  # the error-bar series
    assert list(drawn["IMP"].get_xdata()) == [50.0, 75.0] and list(drawn["RP"].get_xdata()) == [75.0]
    assert drawn["full model (0%)"].get_linestyle() == "None"
    majority = [line for line in ax.get_lines() if line.get_label() == report.MAJORITY_LABEL]
    assert majority[0].get_ydata()[0] == pytest.approx(56.4)
    assert ax.get_ylabel() == "test accuracy (%)"
    assert (tmp_path / "a.png").stat().st_size > 0


def test_accuracy_plots_draw_the_majority_class_of_their_split(tmp_path):
    bars = [{"model": "teacher", "mean": 0.8, "std": None, "label": ""}, {"model": "s", "mean": 0.7, "std": 0.01}]
    ax = report.accuracy_bars(bars, tmp_path / "b.png", title="t", majority=0.578).axes[0]
    assert any(line.get_label() == report.MAJORITY_LABEL for line in ax.get_lines())
    curves = {"s": [[(0, 0.5), (10, 0.7)], [(0, 0.52), (10, 0.72)]]}
    ax = report.learning_curves(curves, tmp_path / "c.png", title="t", majority=0.573,
                                reference=("teacher (validation)", 0.79)).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert report.MAJORITY_LABEL in labels and "teacher (validation)" in labels
    assert ax.get_ylabel() == "validation accuracy (%)"
    assert np.allclose(ax.get_lines()[0].get_ydata(), [51.0, 71.0])


def test_markdown_helpers():
    assert report.markdown_table(["a", "b"], [["x", "1"]]) == "| a | b |\n|---|---:|\n| x | 1 |"
    assert report.pct(0.7812, 0.0049) == "78.1 ± 0.5" and report.pct(None) == "–"
    assert report.percent(-1e-9) == "0.0"
    with pytest.raises(ValueError, match="2 columns"):
        report.markdown_table(["a", "b"], [["x"]])


def test_both_runs_print_their_help_with_every_setting():
    for run in (distill.RUN, tickets.RUN):
        text = runner.parser_for(run).format_help()
        assert "--profile" in text and "--report-only" in text and "--seeds" in text
        for name in run.profiles["cpu"].help():
            if name not in ("name", "notes"):
                assert "--" + name.replace("_", "-") in text
