"""Inference timing: interleaved rounds, so that drift is not charged to whichever model runs first."""

import time

import pytest
import torch
from torch import nn

from compresslib.training import compare_inference_times


class Recorder(nn.Module):
    """Records the order of calls; sleeps ``delay`` seconds per batch."""

    def __init__(self, name, delay, calls):
        super().__init__()
        self.name, self.delay, self.calls = name, delay, calls
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.calls.append(self.name)
        time.sleep(self.delay)
        return x


def test_models_are_timed_in_interleaved_rounds_and_ranked():
    calls = []
    models = {"slow": Recorder("slow", 0.01, calls), "fast": Recorder("fast", 0.0, calls)}
    loader = [{"x": torch.zeros(2), "labels": torch.zeros(2)}]
    times = compare_inference_times(models, loader, rounds=2, repeats=1)
    assert set(times) == {"slow", "fast"}
    assert times["slow"] > 0.01 > times["fast"]
    # one warm-up + one timed pass per round: slow, slow, fast, fast, then the second round again
    assert calls == ["slow", "slow", "fast", "fast"] * 2


@pytest.mark.parametrize("rounds", [0, -1, 1.5, True])
def test_bad_rounds_are_named(rounds):
    with pytest.raises(ValueError, match="rounds"):
        compare_inference_times({"m": Recorder("m", 0.0, [])}, [{"x": torch.zeros(1)}], rounds=rounds)
