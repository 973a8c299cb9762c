"""What the grading sandbox costs (a benchmark that prints its figures; not a pass/fail test).

    .venv/bin/python bench/bench_sandbox.py [--rounds 4] [--starts 6]

1. Kernel start, sandboxed vs plain: a one-cell notebook, interleaved (S, P, S, P ...).
2. Notebook 01 (the release with its solutions filled in, this repository's compresslib as the kit),
   sandboxed vs unsandboxed, interleaved rounds: wall seconds, where they go (sandbox setup, kernel
   start, the imports cell, the other cells), the kernel's CPU seconds, and the overhead as the median of
   the per-round ratios, in wall and in CPU time (on a shared machine the CPU ratio is the steadier one).
3. What the kernel used at the end of notebook 01 (peak address space, data, resident memory, threads):
   the figures behind the default limits.

Goal (issue 8): sandbox overhead under 15%. Print also whether the machine was busy (load average).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook
from tqdm import tqdm

from compresslib.course.notebooks import fill_release, read_notebook, release_path, solution_path
from compresslib.grading.execute import ExecutionPolicy, execute_notebook

ROOT = Path(__file__).resolve().parents[1]
# The last cell: what the kernel used (its CPU seconds from start, memory, threads, the sandbox's tasks).
USAGE = ("import os\nstatus = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
         "times = os.times()\nprint('cpu', times.user + times.system, "
         "{k: status[k].strip() for k in ('VmPeak', 'VmData', 'VmHWM', 'Threads')}, "
         "'tasks', sum(len(os.listdir(f'/proc/{p}/task')) for p in os.listdir('/proc') if p.isdigit()))")


def make_kit(folder: Path) -> Path:
    shutil.copytree(ROOT / "compresslib", folder / "compresslib", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def interleaved(run, rounds: int, label: str) -> dict[str, list]:
    results = {"sandboxed": [], "plain": []}
    for _ in tqdm(range(rounds), desc=label):
        for mode in results:
            started = time.perf_counter()
            result = run(mode == "plain")
            results[mode].append((time.perf_counter() - started, result))
    return results


def kernel_starts(kit: Path, rounds: int) -> None:
    policy = ExecutionPolicy()
    runs = interleaved(lambda plain: execute_notebook(new_notebook(cells=[new_code_cell("pass")]), kit,
                                                      policy=policy, unsandboxed=plain), rounds, "kernel starts")
    print("\n1. kernel start (one-cell notebook), median of", rounds)
    for mode, found in runs.items():
        start = statistics.median(r.timings["kernel_start"] for _, r in found)
        setup = statistics.median(r.timings["sandbox_setup"] for _, r in found)
        wall = statistics.median(w for w, _ in found)
        print(f"   {mode:10s} kernel ready {start:5.2f} s (of which process setup {setup:4.2f} s), "
              f"whole execute_notebook {wall:5.2f} s")


def notebook_01(kit: Path, rounds: int) -> None:
    submission = fill_release(read_notebook(release_path(ROOT, "01_soft_targets")),
                              read_notebook(solution_path(ROOT, "01_soft_targets")))
    submission.cells.append(new_code_cell(USAGE))
    policy = ExecutionPolicy(cell_timeout=600, notebook_timeout=1800)
    imports = next(i for i, c in enumerate(submission.cells) if c.cell_type == "code" and "import torch" in c.source)
    runs = interleaved(lambda plain: execute_notebook(submission, kit, policy=policy, unsandboxed=plain),
                       rounds, "notebook 01")
    print(f"\n2. notebook 01, {rounds} interleaved rounds (medians)")
    for mode, found in runs.items():
        for _, result in found:
            bad = [r for r in result.cells if r.status != "ok"]
            assert not bad, bad
        imports_cell = statistics.median(next(c.seconds for c in r.cells if c.index == imports) for _, r in found)
        parts = {k: statistics.median(r.timings[k] for _, r in found)
                 for k in ("sandbox_setup", "kernel_start", "cells")}
        wall = statistics.median(w for w, _ in found)
        print(f"   {mode:10s} wall {wall:6.2f} s = process setup {parts['sandbox_setup']:.2f} + kernel start "
              f"{parts['kernel_start']:.2f} + cells {parts['cells']:.2f} (the imports cell: {imports_cell:.2f})"
              f" + the rest {wall - sum(parts.values()):.2f}")
    cpu = {mode: [float(r.notebook.cells[-1].outputs[0].text.split()[1]) for _, r in found]
           for mode, found in runs.items()}
    for mode in runs:
        print(f"   {mode:10s} kernel CPU seconds: median {statistics.median(cpu[mode]):.2f} "
              f"({', '.join(f'{c:.2f}' for c in cpu[mode])})")
    walls = [s / p for (s, _), (p, _) in zip(runs["sandboxed"], runs["plain"])]
    cpus = [s / p for s, p in zip(cpu["sandboxed"], cpu["plain"])]
    for name, ratios in (("wall", walls), ("kernel CPU", cpus)):
        print(f"   sandbox overhead in {name}: median of per-round ratios {statistics.median(ratios) - 1:+.1%} "
              f"(rounds: {', '.join(f'{r - 1:+.1%}' for r in ratios)})")
    last = runs["sandboxed"][-1][1].notebook.cells[-1].outputs[0].text.strip()
    print(f"\n3. the kernel at the end of notebook 01 (sandboxed): {last}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of notebook 01")
    parser.add_argument("--starts", type=int, default=6, help="interleaved rounds of kernel starts")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        kit = make_kit(Path(tmp) / "kit")
        os.chmod(tmp, 0o755)
        kernel_starts(kit, args.starts)
        notebook_01(kit, args.rounds)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
