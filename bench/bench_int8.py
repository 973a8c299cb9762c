"""Benchmark (not a test): int8 dynamic quantisation against fp32 for the MiniLM teacher, plus bf16 and fp16.

For batch 1 and batch 32 of 64-token sequences, one forward pass of each model on the same batch,
timed interleaved (fp32, int8, ..., fp32, int8, ...: drift is spread over all models), best of
``--rounds`` rounds; prints seconds and the speed-up over fp32 (fp32 seconds / seconds).

Models: the embedded teacher (all-MiniLM-L6-v2 with a classification head) in fp32; with its linear
layers quantised by ``compresslib.quantize.dynamic_int8`` (PyTorch's dynamic int8, int8 kernels, per
tensor and per output channel); cast to bf16 and to fp16. int8 runs on the CPU only: with
``--device cuda`` it is left out.

Usage: ``python bench/bench_int8.py [--rounds 15] [--batches 1 32] [--length 64] [--threads N] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import platform
import warnings

import torch

from compresslib.ledger import compare_latency
from compresslib.models import load_classifier
from compresslib.quantize import cast, dynamic_int8


def build_models(device: torch.device) -> dict[str, torch.nn.Module]:
    teacher = load_classifier().eval()
    models = {"fp32": teacher}
    if device.type == "cpu":
        models["int8 per tensor"] = dynamic_int8(teacher, per_channel=False)
        models["int8 per channel"] = dynamic_int8(teacher, per_channel=True)
    models["bf16"] = cast(teacher, torch.bfloat16)
    models["fp16"] = cast(teacher, torch.float16)
    return {name: model.to(device) if not name.startswith("int8") else model for name, model in models.items()}


def runs(model, batch) -> bool:
    try:
        with torch.no_grad():
            model(**batch)
        return True
    except (RuntimeError, NotImplementedError) as error:
        print(f"  skipped: {str(error).splitlines()[0][:120]}")
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {device}, "
          f"{torch.get_num_threads()} threads, quantized engine {torch.backends.quantized.engine}")
    models = build_models(device)
    for batch_size in args.batches:
        generator = torch.Generator().manual_seed(batch_size)
        batch = {"input_ids": torch.randint(1000, 20000, (batch_size, args.length), generator=generator),
                 "attention_mask": torch.ones(batch_size, args.length, dtype=torch.long)}
        print(f"\nbatch {batch_size} x {args.length} tokens, best of {args.rounds} interleaved rounds:")
        usable = {}
        for name, model in models.items():
            model_device = next(model.parameters()).device
            if runs(model, {k: v.to(model_device) for k, v in batch.items()}):
                usable[name] = model
        times = compare_latency(usable, batch, baseline="fp32", rounds=args.rounds, repeats=1)
        for name, (seconds, speedup) in times.items():
            print(f"  {name:18s} {seconds:8.4f} s   {speedup:5.2f}x fp32")


if __name__ == "__main__":
    main()
