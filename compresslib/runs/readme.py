"""The README's reference results, generated from ``docs/results/<run>/results.json``.

The README marks each generated section::

    <!-- results:distill -->
    ... generated: tables, claims and figure links; never edit by hand ...
    <!-- /results:distill -->

Only the text between the markers is generated; the prose around it is written by hand. A notebook source
cites its run the same way, in a Markdown cell (``# <!-- results:distill:01 -->`` ... ``# <!-- /results:distill:01 -->``,
the paragraph of the run module's ``notebook_evidence(results, "01")``): :data:`NOTEBOOKS`.

``python -m compresslib.runs readme`` rewrites those sections; ``--check`` only reports whether the README
and the results agree (what the test suite runs). ``python -m compresslib.runs publish <run> --profile cpu``
copies a finished run (``runs/<run>/<profile>/``: results.json, results.md, figures) to ``docs/results/<run>/``
and then rewrites the README.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import shutil
import sys
from pathlib import Path

from compresslib.files import read_json, write_text
from compresslib.runs import paths

RUN_MODULES = {"distill": "compresslib.runs.distill", "tickets": "compresslib.runs.tickets",
               "compress": "compresslib.runs.compress"}
NOTEBOOKS = {  # notebook sources whose "What the evidence shows" paragraph is generated: path -> run
    "solutions/01_soft_targets/01_soft_targets.py": "distill",
    "solutions/02_distilbert_student/02_distilbert_student.py": "distill",
}
NOTEBOOK_SECTION = re.compile(r"(?P<open># <!-- results:(?P<run>[a-z_]+):(?P<key>[a-z0-9_]+) -->\n)(?P<body>.*?)"
                              r"(?P<close># <!-- /results:(?P=run):(?P=key) -->)", re.S)
SECTION = re.compile(r"(?P<open><!-- results:(?P<run>[a-z_]+) -->\n)(?P<body>.*?)(?P<close><!-- /results:(?P=run) -->)",
                     re.S)


def run_of(name: str):
    """The :class:`~compresslib.runs.runner.Run` declared by the run module ``name``."""
    if name not in RUN_MODULES:
        raise ValueError(f"the README marks results of an unknown run {name!r}; known: {sorted(RUN_MODULES)}")
    return importlib.import_module(RUN_MODULES[name]).RUN


def section(name: str, results: dict) -> str:
    """The generated Markdown of one run's section: where the numbers come from, then the run's report body
    with figure links relative to the README."""
    run = run_of(name)
    provenance = results["provenance"]
    seconds = sum(i["wall_seconds"] for i in results["invocations"])
    prefix = paths.docs_results(name).relative_to(paths.REPOSITORY).as_posix() + "/"
    intro = (f"Produced by `{provenance['command']}` on `{provenance['device']}`, {seconds / 60:.1f} minutes over "
             f"{len(results['invocations'])} invocation(s); "
             f"[`results.json`]({prefix}results.json), [`results.md`]({prefix}results.md).")
    return f"{intro}\n\n{run.markdown(results, prefix)}\n"


def render(text: str, results_folder=paths.docs_results) -> str:
    """``text`` (the README) with every marked section regenerated from ``results_folder(run)/results.json``."""

    def replace(match: re.Match) -> str:
        name = match["run"]
        run_of(name)  # an unknown run is named before any file is looked for
        results = read_json(paths.results_json(results_folder(name)))
        return match["open"] + section(name, results) + match["close"]

    rendered, count = SECTION.subn(replace, text)
    if count == 0:
        raise ValueError("the README has no <!-- results:<run> --> ... <!-- /results:<run> --> section")
    return rendered


def render_notebook(text: str, results_folder=paths.docs_results) -> str:
    """A notebook source (jupytext percent format) with every marked paragraph regenerated from
    ``results_folder(run)/results.json``, each line a Markdown comment line."""

    def replace(match: re.Match) -> str:
        results = read_json(paths.results_json(results_folder(match["run"])))
        body = importlib.import_module(RUN_MODULES[match["run"]]).notebook_evidence(results, match["key"])
        return match["open"] + "".join(f"# {line}\n" if line else "#\n" for line in body.splitlines()) + match["close"]

    return NOTEBOOK_SECTION.sub(replace, text)


def generated_files() -> list[tuple[Path, object]]:
    """Every file with generated sections and the function that renders it."""
    return [(paths.readme(), render)] + [(paths.REPOSITORY / name, render_notebook) for name in NOTEBOOKS]


def differences(readme: Path | None = None) -> str:
    """A unified diff from the README (and the notebook sources of :data:`NOTEBOOKS`, unless ``readme`` is
    given) as they are to what the results make them ("" when they agree)."""
    files = [(readme, render)] if readme else generated_files()
    out = []
    for path, rendering in files:
        current = path.read_text(encoding="utf-8")
        name = path.relative_to(paths.REPOSITORY).as_posix() if path.is_relative_to(paths.REPOSITORY) else path.name
        out += difflib.unified_diff(current.splitlines(True), rendering(current).splitlines(True),
                                    f"{name} (as written)", f"{name} (from docs/results/*/results.json)")
    return "".join(out)


def publish(name: str, profile: str, out: Path | None = None) -> Path:
    """Copy ``<out>/<profile>/`` (results.json, results.md and the figures it lists) to ``docs/results/<name>/``."""
    source = paths.profile_dir(out or paths.run_dir(name), profile)
    results = read_json(paths.results_json(source))
    target = paths.docs_results(name)
    target.mkdir(parents=True, exist_ok=True)
    for file in ["results.json", "results.md", *results["figures"]]:
        shutil.copyfile(source / file, target / file)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compresslib.runs readme|publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("readme", "publish"))
    parser.add_argument("run", nargs="?", choices=sorted(RUN_MODULES), help="publish: which run")
    parser.add_argument("--profile", default="cpu", help="publish: the profile whose results the README shows")
    parser.add_argument("--out", type=Path, default=None, help="publish: the run's folder (default runs/<run>)")
    parser.add_argument("--check", action="store_true", help="readme: only report whether README and results agree")
    args = parser.parse_args(argv)
    if args.command == "publish":
        if args.run is None:
            parser.error("publish needs the run's name")
        print(f"copied to {publish(args.run, args.profile, args.out)}")
    diff = differences()
    if args.command == "readme" and args.check:
        print(diff or "README.md agrees with docs/results/*/results.json")
        return 1 if diff else 0
    if diff:
        for path, rendering in generated_files():
            text = path.read_text(encoding="utf-8")
            if rendering(text) != text:
                write_text(path, rendering(text))
                print(f"rewrote the generated sections of {path.relative_to(paths.REPOSITORY)}")
    else:
        print("README.md already agrees with docs/results/*/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
