"""Training plumbing shared by the reference runs and the notebooks: tokenising, batching,
a fit loop with progress, evaluation, cached logits and inference timing.

One code path for CPU and GPU: the device is chosen at run time; on CUDA the forward and backward
passes run under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np
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


def make_loader(dataset, tokenizer, *, batch_size: int, shuffle: bool, seed: int = 0, extra_columns=(),
                group_by_length: bool = False):
    """A DataLoader of padded batches with ``input_ids``, ``attention_mask`` (``token_type_ids`` when the
    tokenizer makes them), ``labels``, and any ``extra_columns`` (e.g. cached ``teacher_logits``).

    ``group_by_length=True`` (with ``shuffle``) batches snippets of similar length together
    (:class:`LengthGroupedBatches`), so that less of each batch is padding."""
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
    if group_by_length:
        if not shuffle:
            raise ValueError("group_by_length groups a shuffled order; for a fixed order sort the dataset instead")
        lengths = [len(ids) for ids in dataset["input_ids"]]
        return torch.utils.data.DataLoader(dataset, batch_sampler=LengthGroupedBatches(lengths, batch_size, generator),
                                           collate_fn=collate)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator
    )


class LengthGroupedBatches:
    """Batches of indices of similar length, in a fresh random order at every pass.

    Each pass shuffles the indices, cuts them into groups of ``group_batches`` batches, sorts each group by
    length, cuts it into batches and shuffles the order of all batches: every example still comes once per
    pass at a random time, but a batch pads to its longest member among neighbours of similar length
    (Hugging Face's ``group_by_length``). On the Rotten Tomatoes snippets at 48 tokens and batches of 32 it
    cuts the mean padded length from about 47 to about 27 tokens."""

    def __init__(self, lengths, batch_size: int, generator: torch.Generator, group_batches: int = 50):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.lengths, self.batch_size, self.generator, self.group = torch.as_tensor(lengths), batch_size, generator, group_batches

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator)
        size = self.group * self.batch_size
        batches = []
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]


class StreamLoader:
    """Exactly ``steps`` batches, each merging one batch from every stream of ``streams`` (``{prefix: loader}``)
    with that stream's prefix on its keys (``""`` for none). A stream that runs out starts again (a shuffling
    loader reshuffles), so a small labelled set is cycled while a larger transfer set is read about once.

    ``StreamLoader({"": labelled}, steps=287)``: 287 batches of ``labelled``, cycled;
    ``StreamLoader({"": labelled, "transfer.": transfer}, steps=len(transfer))``: one pass over ``transfer``,
    each of its batches paired with the next labelled batch (:func:`compresslib.batches.split_streams`
    separates them again). ``fit(model, loader, epochs=1)`` then trains for exactly ``steps`` steps."""

    def __init__(self, streams: Mapping[str, Iterable], *, steps: int):
        if not streams:
            raise ValueError("streams must hold at least one {prefix: loader} entry")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        empty = [prefix for prefix, loader in streams.items() if len(loader) == 0]
        if empty:
            raise ValueError(f"the streams {empty} have no batches")
        self.streams, self.steps = dict(streams), steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        iterators = {prefix: iter(loader) for prefix, loader in self.streams.items()}
        for _ in range(self.steps):
            merged = {}
            for prefix, loader in self.streams.items():
                try:
                    batch = next(iterators[prefix])
                except StopIteration:
                    iterators[prefix] = iter(loader)
                    batch = next(iterators[prefix])
                merged.update({prefix + key: value for key, value in batch.items()})
            yield merged


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
    epochs: float | None = None,
    lr: float,
    steps: int | None = None,
    step: Callable[[nn.Module, dict, torch.optim.Optimizer], dict[str, float]] = hard_label_step,
    after_step: Callable[[nn.Module], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    warmup_fraction: float = 0.1,
    device: torch.device | None = None,
    desc: str = "training",
    optimizer: torch.optim.Optimizer | None = None,
    start_step: int = 0,
) -> list[dict[str, float]]:
    """Train ``model`` for ``epochs`` passes over ``loader`` (a fraction allowed), or for exactly ``steps``
    optimizer steps (cycling through the loader), with AdamW and a linear warm-up/decay schedule, calling
    ``step(model, batch, optimizer)`` for each batch.

    ``after_step(model)`` runs after each optimizer step (pruning uses it to keep masked weights at
    zero); ``on_step(global_step)`` after that (rewinding uses it to save weights part-way).
    Returns the per-step history of what ``step`` returned.

    ``start_step = k`` continues the same run from step ``k``: the first ``k`` batches the loader yields are
    skipped (a loader that replays its order, e.g. one seeded when it is made, gives the batches steps
    ``k+1, ...`` of the original run saw), the schedule starts at its value for step ``k``, and only the
    remaining ``total - k`` steps are taken (``on_step`` counts from ``k + 1``). What rewinding to step ``k``
    with an equal budget needs: the rewound run ends where the original schedule ends. The optimizer's
    moments start afresh (as OpenLTH's rewinding does).
    """
    device = device or next(model.parameters()).device
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs (passes over the loader) or steps (optimizer steps)")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    total_steps = steps if steps is not None else max(1, math.ceil(epochs * len(loader)))
    if isinstance(start_step, bool) or not isinstance(start_step, int) or not 0 <= start_step < total_steps:
        raise ValueError(f"start_step must be an integer in [0, {total_steps}) (the run has {total_steps} steps), "
                         f"got {start_step!r}")
    optimizer = optimizer or make_optimizer(model, lr=lr)
    warmup = int(warmup_fraction * total_steps)

    def schedule(i):
        i += start_step
        if i < warmup:
            return (i + 1) / (warmup + 1)
        return max(0.0, (total_steps - i) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: list[dict[str, float]] = []
    bar = tqdm(total=total_steps - start_step, desc=desc, leave=False, mininterval=1.0)
    global_step, skipped = start_step, 0
    while global_step < total_steps:
        for batch in loader:
            if skipped < start_step:  # replay the original order up to the start
                skipped += 1
                continue
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


@torch.no_grad()
def predict_logits_by_length(model: nn.Module, dataset, tokenizer, *, batch_size: int,
                             device: torch.device | None = None, desc="predicting") -> torch.Tensor:
    """:func:`predict_logits` for every example of ``dataset``, in the dataset's order, computed over the
    examples sorted by length (each batch pads less; the result is the same up to float rounding)."""
    order = torch.as_tensor(np.argsort([len(ids) for ids in dataset["input_ids"]], kind="stable"))
    loader = make_loader(dataset.select(order.tolist()), tokenizer, batch_size=batch_size, shuffle=False)
    by_length = predict_logits(model, loader, device=device, desc=desc)
    logits = torch.empty_like(by_length)
    logits[order] = by_length
    return logits


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
