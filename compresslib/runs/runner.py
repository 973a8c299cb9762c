"""The one skeleton every reference run follows: profile -> parts -> summary and claims -> report.

A run module declares a :class:`Run`::

    RUN = Run(
        name="tickets", description=__doc__, profiles=PROFILES,   # typed profiles (compresslib.runs.hparams)
        execute=execute,        # (profile, folder, device) -> measured results; parts cached under folder
        summarise=summarise,    # results -> derived entries, "claims" among them (pure: results.json alone)
        plot=plot,              # (results, folder) -> names of the PNG files it wrote there
        markdown=markdown,      # (results, figure_prefix) -> the report's Markdown body (tables, claims, figures)
        title=...,              # the report's heading
    )

    def main(argv=None):
        return run_main(RUN, argv)

and :func:`run_main` does the rest, the same way for every run: the command line (``--profile``, one
option per profile field, ``--out``, ``--device``, ``--threads``, ``--report-only``), the folders
(:mod:`compresslib.runs.paths`), seeding, provenance, the invocation history, and the files:
``<out>/<profile>/results.json`` and ``results.md`` with the figures, copied to ``<out>/`` as the latest.
``--report-only`` recomputes the summary, claims and report from an existing ``results.json`` without
training (what to run after changing a plot or a claim's criterion).
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from compresslib.files import read_json, write_json, write_text
from compresslib.runs import hparams, paths
from compresslib.runs.common import invocations, provenance, seed_everything
from compresslib.runs.hparams import Profile
from compresslib.training import choose_device

MEASURED_KEYS = ("run", "profile", "config")


@dataclass(frozen=True)
class Run:
    """What a reference run declares; :func:`run_main` runs it."""

    name: str
    description: str
    profiles: Mapping[str, Profile]
    execute: Callable[[Profile, Path, torch.device], dict]
    summarise: Callable[[dict], dict]
    plot: Callable[[dict, Path], list[str]]
    markdown: Callable[[dict, str], str]
    title: Callable[[dict], str]


def parser_for(run: Run) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m compresslib.runs {run.name}", description=run.description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(run.profiles), default="quick",
                        help="quick: minutes on a laptop CPU; cpu: the README's figures; gpu: full size on a GPU")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"the run's folder (default $COMPRESSLIB_RUNS/{run.name}, i.e. runs/{run.name}); "
                             "the profile's files go to <out>/<profile>/")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is faster than 2 when another job shares a 2-core machine)")
    parser.add_argument("--report-only", action="store_true",
                        help="recompute the summary, claims, tables and plots from <out>/<profile>/results.json")
    hparams.add_arguments(parser, run.profiles)
    return parser


def run_main(run: Run, argv=None) -> int:
    """Parse ``argv`` and run ``run``: see the module docstring."""
    hparams.check_profiles(run.profiles)
    argv = list(argv) if argv is not None else None
    args = parser_for(run).parse_args(argv)
    profile = hparams.from_arguments(args, run.profiles[args.profile])
    out = args.out or paths.run_dir(run.name)
    folder = paths.profile_dir(out, profile.name)
    if args.report_only:
        if not paths.results_json(folder).exists():
            raise SystemExit(f"{paths.results_json(folder)} does not exist: run without --report-only first")
        results = {k: v for k, v in read_json(paths.results_json(folder)).items()}
    else:
        results = measure(run, profile, folder, args, argv)
    results.update(run.summarise(results))
    results["figures"] = run.plot(results, folder)
    write_report(run, results, folder, out)
    print(run.markdown(results, ""))
    print(f"wrote {paths.results_json(folder)} (latest also in {out})")
    return 0


def measure(run: Run, profile: Profile, folder: Path, args, argv) -> dict:
    """Execute the run's parts (skipping those already on file) and wrap their results with provenance."""
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    device = choose_device(args.device)
    seed_everything(0)
    measured = run.execute(profile, folder, device)
    seconds = time.perf_counter() - started
    command = " ".join(["python -m compresslib.runs", run.name, *(argv if argv is not None else [])])
    return {"run": run.name, "profile": profile.name, "config": profile.config(), **measured,
            "invocations": invocations(paths.results_json(folder), seconds),
            "provenance": provenance(profile.config(), device, command)}


def write_report(run: Run, results: dict, folder: Path, out: Path) -> None:
    """``results.json``, ``results.md`` and the figures in the profile's folder, copied to ``out`` (the latest)."""
    report = f"# {run.title(results)}\n\n{run.markdown(results, '')}\n"
    for target in (folder, out):
        write_json(paths.results_json(target), results)
        write_text(paths.results_md(target), report)
        if target != folder:
            for name in results["figures"]:
                shutil.copyfile(folder / name, target / name)
