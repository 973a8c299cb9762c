"""Benchmark (not a test): the global magnitude threshold over ~110M scores (BERT-base's size).

Finding the k-th smallest |w| over all prunable weights, three ways:

- ``torch.sort`` of all scores, then index k-1 (what ``compresslib.prune.lowest_k`` uses on a GPU, as a
  stable sort, which also gives the exact, position-tie-broken selection);
- ``torch.kthvalue`` (what it uses on the CPU, followed by an exact tie fix-up);
- ``torch.topk(k, largest=False)`` (its last value).

Usage: ``python bench/bench_global_threshold.py [--numel 110000000] [--repeats 3] [--device cpu|cuda]``.
Prints the best-of-``repeats`` wall time of each and checks that they agree.
"""

from __future__ import annotations

import argparse
import time

import torch


def timed(fn, device, repeats):
    best, value = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        value = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numel", type=int, default=110_000_000)
    parser.add_argument("--sparsity", type=float, default=0.6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sort", "stable_sort", "kthvalue", "topk"])
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    g = torch.Generator(device=device).manual_seed(0)
    scores = torch.randn(args.numel, generator=g, device=device).abs()
    k = int(round(args.sparsity * args.numel))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"global threshold over {args.numel:,} scores, k = {k:,} ({name}, torch {torch.__version__})")
    methods = {
        "sort": lambda: torch.sort(scores).values[k - 1],
        "stable_sort": lambda: torch.sort(scores, stable=True).values[k - 1],
        "kthvalue": lambda: torch.kthvalue(scores, k).values,
        "topk": lambda: torch.topk(scores, k, largest=False, sorted=False).values.max(),
    }
    results = {}
    for label, fn in methods.items():
        if label in args.skip:
            continue
        seconds, value = timed(fn, device, args.repeats)
        results[label] = (seconds, float(value))
        print(f"  {label:12s} {seconds * 1000:10.1f} ms   threshold {float(value):.7f}", flush=True)
    values = {v for _, v in results.values()}
    print("  all agree" if len(values) == 1 else f"  DISAGREE: {results}")
    return results


if __name__ == "__main__":
    main()
