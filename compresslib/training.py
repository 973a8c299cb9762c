"""Training plumbing shared by the reference runs and the notebooks: tokenising, batching,
a fit loop with progress, evaluation, cached logits and inference timing.

One code path for CPU and GPU: the device is chosen at run time; on CUDA the forward and backward
passes run under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from compresslib.batches import LABELS_KEY, TEACHER_LOGITS_KEY, logits_of, model_inputs

MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def choose_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context on CPU (fp32 there is both faster and exact)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def tokenize(dataset_dict, tokenizer, max_length: int = 64):
    """Tokenise the ``text`` column of every split (truncated to ``max_length`` tokens, unpadded:
    batches are padded to their longest member by :func:`make_loader`)."""

    def encode(rows):
        return tokenizer(rows["text"], truncation=True, max_length=max_length)

    return dataset_dict.map(encode, batched=True, desc="tokenising")


def make_loader(dataset, tokenizer, *, batch_size: int, shuffle: bool, seed: int = 0, extra_columns=()):
    """A DataLoader of padded batches with ``input_ids``, ``attention_mask`` (``token_type_ids`` when the
    tokenizer makes them), ``labels``, and any ``extra_columns`` (e.g. cached ``teacher_logits``)."""
    columns = [c for c in MODEL_COLUMNS if c in dataset.column_names]
    pad_id = tokenizer.pad_token_id or 0

    def collate(rows):
        length = max(len(r["input_ids"]) for r in rows)
        batch = {}
        for column in columns:
            fill = pad_id if column == "input_ids" else 0
            batch[column] = torch.tensor([r[column] + [fill] * (length - len(r[column])) for r in rows])
        batch[LABELS_KEY] = torch.tensor([r["label"] for r in rows])
        for column in extra_columns:
            batch[column] = torch.tensor([r[column] for r in rows], dtype=torch.float32)
        return batch

    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator
    )


def hard_label_step(model: nn.Module, batch, optimizer) -> dict[str, float]:
    """One step of ordinary fine-tuning on the labels: cross-entropy at temperature 1."""
    model.train()
    logits = logits_of(model(**model_inputs(batch)))
    loss = nn.functional.cross_entropy(logits.float(), batch[LABELS_KEY])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float = 0.01):
    """AdamW with weight decay on weight matrices only (not biases or LayerNorm), as for BERT."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.dim() < 2 else decay).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )


def fit(
    model: nn.Module,
    loader,
    *,
    epochs: float,
    lr: float,
    step: Callable[[nn.Module, dict, torch.optim.Optimizer], dict[str, float]] = hard_label_step,
    after_step: Callable[[nn.Module], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    warmup_fraction: float = 0.1,
    device: torch.device | None = None,
    desc: str = "training",
    optimizer: torch.optim.Optimizer | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` for ``epochs`` passes over ``loader`` (a fraction allowed) with AdamW and a linear
    warm-up/decay schedule, calling ``step(model, batch, optimizer)`` for each batch.

    ``after_step(model)`` runs after each optimizer step (pruning uses it to keep masked weights at
    zero); ``on_step(global_step)`` after that (rewinding uses it to save weights part-way).
    Returns the per-step history of what ``step`` returned.
    """
    device = device or next(model.parameters()).device
    total_steps = max(1, math.ceil(epochs * len(loader)))
    optimizer = optimizer or make_optimizer(model, lr=lr)
    warmup = int(warmup_fraction * total_steps)

    def schedule(i):
        if i < warmup:
            return (i + 1) / (warmup + 1)
        return max(0.0, (total_steps - i) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: list[dict[str, float]] = []
    bar = tqdm(total=total_steps, desc=desc, leave=False, mininterval=1.0)
    global_step = 0
    while global_step < total_steps:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(device):
                record = step(model, batch, optimizer)
            scheduler.step()
            if after_step is not None:
                after_step(model)
            global_step += 1
            if on_step is not None:
                on_step(global_step)
            history.append(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", refresh=False)
            if global_step >= total_steps:
                break
    bar.close()
    return history


@torch.no_grad()
def predict_logits(model: nn.Module, loader, *, device: torch.device | None = None, desc="predicting",
                   amp: bool = True) -> torch.Tensor:
    """The model's logits over a non-shuffled loader, in eval mode, as float32 on the CPU. ``amp=False``
    runs the model at its own precision on CUDA too, instead of under bf16 autocast."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=1.0):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device) if amp else contextlib.nullcontext():
            out.append(logits_of(model(**model_inputs(batch))).float().cpu())
    return torch.cat(out)


def accuracy(model: nn.Module, loader, *, device: torch.device | None = None) -> float:
    """Fraction of examples whose arg-max logit is the label."""
    logits = predict_logits(model, loader, device=device, desc="evaluating")
    labels = torch.cat([b[LABELS_KEY] for b in loader])
    return (logits.argmax(-1) == labels).float().mean().item()


def with_teacher_logits(dataset, logits: torch.Tensor):
    """``dataset`` with a ``teacher_logits`` column, so cached soft targets travel with their examples
    when the loader shuffles."""
    if len(logits) != len(dataset):
        raise ValueError(f"{len(logits)} teacher logits for {len(dataset)} examples")
    if TEACHER_LOGITS_KEY in dataset.column_names:
        dataset = dataset.remove_columns(TEACHER_LOGITS_KEY)
    return dataset.add_column(TEACHER_LOGITS_KEY, logits.tolist())


@torch.no_grad()
def time_inference(model: nn.Module, loader, *, device: torch.device | None = None, repeats: int = 3,
                   amp: bool = True) -> float:
    """Seconds for one pass of ``model`` over ``loader`` in eval mode: the best of ``repeats`` passes
    after one warm-up batch (the same batches for every model, so times compare). ``amp=False`` runs
    the model at its own precision on CUDA too, instead of under bf16 autocast."""
    device = device or next(model.parameters()).device
    model.eval()
    batches = [{k: v.to(device) for k, v in b.items()} for b in loader]
    model(**model_inputs(batches[0]))
    best = math.inf
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for batch in batches:
            with autocast(device) if amp else contextlib.nullcontext():
                model(**model_inputs(batch))
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def compare_inference_times(models: dict[str, nn.Module], loader, *, device: torch.device | None = None,
                            rounds: int = 3, repeats: int = 3, amp: bool = True) -> dict[str, float]:
    """``{name: seconds}`` for one pass of each model over ``loader``: the best of ``rounds`` interleaved
    rounds of :func:`time_inference` (``repeats`` passes each; ``amp`` as there). Interleaving spreads the
    machine's drift (other jobs, clock changes) over every model instead of charging it to whichever ran first."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    best = {name: math.inf for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            best[name] = min(best[name], time_inference(model, loader, device=device, repeats=repeats, amp=amp))
    return best
