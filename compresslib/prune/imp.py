r"""Iterative magnitude pruning (IMP) with rewinding, written round by round to files.

The lecture's procedure (Frankle & Carbin, 2019; for BERT, Chen et al., 2020):

1. start from :math:`\theta_0` (for BERT the pre-trained weights) with the all-ones mask;
2. train for ``T`` steps to :math:`\theta_T` (round 0: the full model);
3. prune ``p`` of the *remaining* weights with the smallest :math:`|\theta_T|` to get mask :math:`m`;
4. reset the survivors to the rewind point, giving :math:`m \odot \theta_k`, and train again with the
   mask kept applied; repeat 3-4 for ``n`` rounds (sparsity after round ``r``: :math:`1-(1-p)^r`).

Rewind points: ``"init"`` (:math:`\theta_0`, "rewind 0%"), a fraction ``f`` in (0, 1) (the weights after
``round(f * train_steps)`` steps of round 0, "rewind f%"), or ``"none"`` (standard pruning: each
round fine-tunes the previous round's final weights). Each round trains for the same ``train_steps``,
unless ``resume_schedule=True``: then a round rewound to step ``k`` runs the rest of round 0's schedule
(steps ``k+1 .. train_steps``), so every ticket has ``train_steps`` steps behind it counted from
:math:`\theta_0` and rewind points compare at an equal budget. ``rewind_names`` limits what is rewound
(Chen et al. rewind the BERT body and let the classifier keep its trained weights).

Files under ``out_dir`` (each round's ``metrics.json`` is written last, atomically, so a round is
finished exactly when it exists)::

    config.json                       what the run was asked to do (a resume must match it)
    rewind.safetensors                the rewind point (not for "none")
    round_00/mask.safetensors         the mask the round trained under
    round_00/checkpoint.safetensors   the trained weights (trainable tensors and buffers)
    round_00/metrics.json             evaluate(model) + sparsity, per-layer sparsity, seconds

Resuming: a rerun loads the last finished round's checkpoint and mask and continues; every round seeds
torch with ``seed * 1000 + round`` before training, so resumed and uninterrupted runs agree exactly
(provided ``train`` is deterministic given the torch seed, e.g. builds its loader with a fixed seed).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from compresslib.answers import reference_answer
from compresslib._checks import check_fraction
from compresslib.files import atomic_path, read_json, write_json
from compresslib.prune.apply import MaskEnforcer
from compresslib.prune.magnitude import _check_scope, prune_remaining
from compresslib.prune.mask import Mask
from compresslib.prune.targets import prunable_names

TrainFn = Callable[..., object]  # train(model, *, after_step, on_step)
EvalFn = Callable[[nn.Module], dict]


def check_rewind(rewind) -> str | float:
    """``"init"`` (also 0 or 0.0), ``"none"`` (also None), or a fraction in (0, 1)."""
    if rewind is None or rewind == "none":
        return "none"
    if rewind == "init" or (not isinstance(rewind, (bool, str)) and rewind == 0):
        return "init"
    if isinstance(rewind, str):
        raise ValueError(f"rewind must be 'init', 'none' or a fraction of training in (0, 1), got {rewind!r}")
    return check_fraction(rewind, "rewind", low_inclusive=False, high_inclusive=False)


def rewind_label(rewind) -> str:
    rewind = check_rewind(rewind)
    return {"init": "rewind 0%", "none": "standard pruning"}.get(rewind) or f"rewind {round(100 * rewind)}%"


def round_dir(out_dir, r: int) -> Path:
    return Path(out_dir) / f"round_{r:02d}"


def finished_rounds(out_dir) -> list[int]:
    """Rounds whose ``metrics.json`` exists, in order (stops at the first gap)."""
    done, r = [], 0
    while (round_dir(out_dir, r) / "metrics.json").exists():
        done.append(r)
        r += 1
    return done


def _save_state(path: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in state.items()}, str(tmp))


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state to checkpoint: every entry of ``state_dict`` except frozen parameters (they never change)."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k not in frozen}


@dataclass
class IMPResult:
    """What :func:`iterative_magnitude_pruning` returns: one metrics dict per round (round 0 = full model)."""

    out_dir: Path
    rounds: list[dict] = field(default_factory=list)

    def mask(self, r: int) -> Mask:
        return Mask.load(round_dir(self.out_dir, r) / "mask.safetensors")

    def checkpoint(self, r: int) -> dict[str, torch.Tensor]:
        return _load_state(round_dir(self.out_dir, r) / "checkpoint.safetensors")


@reference_answer("03_lottery_tickets")
def iterative_magnitude_pruning(
    model: nn.Module,
    train: TrainFn,
    evaluate: EvalFn,
    *,
    rounds: int,
    fraction: float,
    out_dir,
    rewind="init",
    train_steps: int | None = None,
    scope: str = "global",
    names=None,
    seed: int = 0,
    extra_rewind_points=(),
    rewind_names=None,
    resume_schedule: bool = False,
    progress: bool = True,
) -> IMPResult:
    """Run (or resume) IMP on ``model``, whose current weights are :math:`\\theta_0`.

    Args:
        model: modified in place; on return it holds the last round's trained, masked weights.
        train: ``train(model, after_step=..., on_step=...)`` trains in place for ``train_steps`` optimizer
            steps, calling ``after_step(model)`` after every step (keeps the mask applied) and then
            ``on_step(global_step)`` (saves rewind points): :func:`compresslib.training.fit` fits.
        evaluate: ``evaluate(model) -> {"accuracy": ..., ...}``.
        rounds: pruning rounds after round 0 (the unpruned training run).
        fraction: ``p``, the fraction of the remaining prunable weights pruned each round, in (0, 1).
        out_dir: where the round files go; an existing run there is resumed.
        rewind: ``"init"``, ``"none"`` or a fraction of ``train_steps`` (see the module docstring).
        train_steps: steps per round; needed for a fractional rewind.
        scope: ``"global"`` (one ranking over all prunable weights) or ``"layer"``.
        names: the prunable parameters (default :func:`prunable_names`).
        seed: torch is seeded with ``seed * 1000 + round`` before each round's training.
        extra_rewind_points: fractions of round 0 whose weights are also saved (as
            ``rewind_<pct>.safetensors``) so other rewinding variants can branch off with
            :func:`branch_from_round0` without repeating round 0.
        rewind_names: the ``state_dict`` entries that are rewound (default: all of them). The others keep the
            values they had at the end of the previous round: Chen et al.'s code rewinds the BERT body only
            (``bert.*``), so the task classifier keeps its trained weights from round to round.
        resume_schedule: with a fractional ``rewind`` (the weights after step ``k``), train each later round
            with ``train(..., start_step=k)``: the rest of round 0's schedule (its learning rates and batch
            order from step ``k`` on, ``train_steps - k`` steps), so every ticket is trained for
            ``train_steps`` steps counted from :math:`\theta_0`, whatever ``k``. Without it, each round
            trains ``train_steps`` fresh steps from the rewind point (``k + train_steps`` in all), and later
            rewind points get more training.
    """
    rewind = check_rewind(rewind)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
    fraction = check_fraction(fraction, "fraction", low_inclusive=False, high_inclusive=False)
    _check_scope(scope)
    extra = [check_fraction(f, "extra_rewind_points", low_inclusive=False, high_inclusive=False) for f in extra_rewind_points]
    if (isinstance(rewind, float) or extra) and (not isinstance(train_steps, int) or train_steps < 1):
        raise ValueError(f"a fractional rewind needs train_steps (a positive int), got {train_steps!r}")
    names = prunable_names(model, names=names) if names is not None else prunable_names(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_keys = list(model.state_dict())
    if rewind_names is not None:
        rewind_names = list(rewind_names)
        unknown = [n for n in rewind_names if n not in state_keys]
        if unknown:
            raise ValueError(f"rewind_names holds entries the model's state_dict lacks: {unknown[:3]}")
    if not isinstance(resume_schedule, bool):
        raise ValueError(f"resume_schedule must be True or False, got {resume_schedule!r}")
    config = {"fraction": fraction, "rewind": rewind, "scope": scope, "seed": seed, "names": names,
              "train_steps": train_steps}
    if rewind_names is not None:
        config["rewind_names"] = rewind_names
    if resume_schedule:
        config["resume_schedule"] = True
    config_path = out / "config.json"
    if config_path.exists():
        stored = read_json(config_path)
        if stored != config:
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            raise ValueError(f"{out} holds an IMP run with a different config (differs in {diff}); use another out_dir")
    else:
        write_json(config_path, config)

    theta0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # (step, file) pairs to save during round 0: the rewind point and any extra points for branches
    to_save = []
    rewind_step = max(1, round(rewind * train_steps)) if isinstance(rewind, float) else 0
    if isinstance(rewind, float):
        to_save.append((rewind_step, out / "rewind.safetensors"))
    to_save += [(max(1, round(f * train_steps)), out / f"rewind_{round(100 * f)}.safetensors") for f in extra]
    steps_to_save = {step for step, _ in to_save}

    done = finished_rounds(out)
    done = [r for r in done if r <= rounds]
    results = [read_json(round_dir(out, r) / "metrics.json") for r in done]
    mask = Mask.load(round_dir(out, done[-1]) / "mask.safetensors") if done else None
    last_weights = None
    if done:
        last_weights = dict(theta0)
        last_weights.update(_load_state(round_dir(out, done[-1]) / "checkpoint.safetensors"))
    rewind_state = None
    if done and rewind != "none":
        rewind_state = dict(theta0)
        if rewind != "init":
            rewind_state.update(_load_state(out / "rewind.safetensors"))

    bar = tqdm(range(len(done), rounds + 1), desc=f"IMP {rewind_label(rewind)}", disable=not progress, leave=False)
    for r in bar:
        start_time = time.perf_counter()
        if r == 0:
            new_mask = Mask.ones_like(model, names)
            start_state = theta0
        else:
            model.load_state_dict(last_weights)
            new_mask = prune_remaining(model, fraction, mask, scope=scope)
            new_mask.check_shrinks(mask)
            start_state = dict(last_weights)
            if rewind != "none":
                start_state.update({k: rewind_state[k] for k in (rewind_names or state_keys)})
        mask = new_mask
        model.load_state_dict(start_state)
        captured: dict[int, dict[str, torch.Tensor]] = {}

        def on_step(step, _r=r):
            if _r == 0 and step in steps_to_save:
                captured[step] = {k: v.detach().clone() for k, v in trainable_state(model).items()}

        enforcer = MaskEnforcer(model, mask)
        torch.manual_seed(seed * 1000 + r)
        try:
            if r > 0 and resume_schedule and isinstance(rewind, float):
                train(model, after_step=enforcer, on_step=on_step, start_step=rewind_step)
            else:
                train(model, after_step=enforcer, on_step=on_step)
        finally:
            enforcer.remove()
        enforcer(model)
        if r == 0:
            for step, path in to_save:
                if step not in captured:
                    raise ValueError(f"train() stopped before step {step}, the rewind point; does train_steps={train_steps} match?")
                _save_state(path, captured[step])
            if rewind == "init":
                _save_state(out / "rewind.safetensors", theta0)
            rewind_state = dict(theta0)
            if rewind != "init" and rewind != "none":
                rewind_state.update(_load_state(out / "rewind.safetensors"))
        metrics = dict(evaluate(model))
        d = round_dir(out, r)
        mask.save(d / "mask.safetensors")
        _save_state(d / "checkpoint.safetensors", trainable_state(model))
        metrics.update({
            "round": r,
            "sparsity": mask.sparsity,
            "layer_sparsity": mask.layer_sparsity(),
            "rewind": rewind_label(rewind),
            "seconds": time.perf_counter() - start_time,
        })
        write_json(d / "metrics.json", metrics)
        results.append(metrics)
        last_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(sparsity=f"{mask.sparsity:.2f}", acc=f"{metrics.get('accuracy', float('nan')):.3f}")
    bar.close()
    return IMPResult(out_dir=out, rounds=results)


def branch_from_round0(source_dir, target_dir, rewind) -> Path:
    """Start a rewinding variant in ``target_dir`` from a finished round 0 in ``source_dir`` (run with
    ``extra_rewind_points`` holding the fraction ``rewind``, or any run for ``"init"``/``"none"``).
    Round 0 is the same for every rewind point, so it is copied rather than retrained; the caller then
    runs :func:`iterative_magnitude_pruning` on ``target_dir`` with the same settings and this rewind."""
    rewind = check_rewind(rewind)
    src, dst = Path(source_dir), Path(target_dir)
    if not (round_dir(src, 0) / "metrics.json").exists():
        raise ValueError(f"{src} has no finished round 0 to branch from")
    if (round_dir(dst, 0) / "metrics.json").exists():
        return dst
    config = read_json(src / "config.json")
    config["rewind"] = rewind
    if isinstance(rewind, float):
        point = src / f"rewind_{round(100 * rewind)}.safetensors"
        if not point.exists():
            raise ValueError(f"{src} did not save a rewind point at {rewind}; run it with extra_rewind_points")
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(point, dst / "rewind.safetensors")
    elif rewind == "init":
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "rewind.safetensors", dst / "rewind.safetensors")
    dst.mkdir(parents=True, exist_ok=True)
    write_json(dst / "config.json", config)
    shutil.copytree(round_dir(src, 0), round_dir(dst, 0), dirs_exist_ok=True)
    metrics_path = round_dir(dst, 0) / "metrics.json"
    metrics = read_json(metrics_path)
    metrics["rewind"] = rewind_label(rewind)
    write_json(metrics_path, metrics)
    return dst
