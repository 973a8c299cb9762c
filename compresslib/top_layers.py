r"""A lottery-ticket experiment small enough for a laptop CPU: the top layers of the pre-trained teacher.

Fine-tuning all of MiniLM-L6 several times (one per IMP round and per baseline) takes far too long for
a notebook on a CPU (about 190 s per epoch here, see the tickets reference run). Notebook 03 therefore
prunes and fine-tunes only the **top** ``top_layers`` transformer layers of the pre-trained encoder, plus
the classifier head: the layers below are frozen, so their outputs are computed once and cached. The
subnetwork keeps what the BERT-ticket experiments are about: :math:`\theta_0` are *pre-trained*
weights, and the prunable weights are the encoder's linear layers (query, key, value, attention
output, FFN in and out), embeddings and the classifier excluded.

``TopLayersTask.build(...)`` loads the embedded default data and teacher (``compresslib.data``,
``compresslib.models``), takes stratified-free shuffled subsets, tokenises them, runs the frozen
bottom once and keeps the hidden states as padded batches. ``task.theta0()`` returns a fresh copy of
the top model at :math:`\theta_0`; ``task.train(model, after_step=...)`` fine-tunes it with
``compresslib.training.fit`` (AdamW, linear schedule) and ``task.accuracy(model)`` evaluates it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn


class CachedEmbeddings(nn.Module):
    """Stands in for BERT's embedding layer: passes the cached hidden states (``inputs_embeds``) through,
    in the model's floating-point dtype (float32 caches feed a model cast to bfloat16 or float16 too)."""

    def __init__(self):
        super().__init__()
        # an empty, non-persistent buffer: model.to(dtype) converts it, so it tells forward the model's dtype
        self.register_buffer("dtype_probe", torch.empty(0), persistent=False)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, **kwargs):
        if inputs_embeds is None:
            raise ValueError("the top-layers model takes the cached hidden states as inputs_embeds")
        return inputs_embeds.to(self.dtype_probe.dtype)


@dataclass
class TopLayersTask:
    """Cached inputs of the top ``top_layers`` layers, the top model at θ0, and its training settings."""

    template: nn.Module
    train_batches: list
    eval_batches: list
    epochs: float
    lr: float

    @classmethod
    @torch.no_grad()
    def build(cls, *, train_examples: int = 256, eval_examples: int = 256, top_layers: int = 2,
              max_length: int = 32, batch_size: int = 16, epochs: float = 2, lr: float = 1e-4,
              seed: int = 0) -> "TopLayersTask":
        """Load data and teacher, cache the frozen bottom's outputs, keep the top at θ0 (head seeded by ``seed``)."""
        from datasets import DatasetDict

        from compresslib.data import load_text_classification, subset
        from compresslib.models import load_classifier, load_tokenizer
        from compresslib.training import make_loader, tokenize

        for name, value in (("train_examples", train_examples), ("eval_examples", eval_examples),
                            ("top_layers", top_layers), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        data = load_text_classification()
        subsets = DatasetDict(
            train=subset(data["train"], int(train_examples), seed=seed),
            test=subset(data["test"], int(eval_examples), seed=seed),
        )
        tokenizer = load_tokenizer()
        subsets = tokenize(subsets, tokenizer, max_length=max_length)
        model = load_classifier(seed=seed).eval()
        n_layers = len(model.bert.encoder.layer)
        if not 1 <= top_layers <= n_layers:
            raise ValueError(f"top_layers must be in [1, {n_layers}], got {top_layers}")

        def cache(dataset, shuffle):
            loader = make_loader(dataset, tokenizer, batch_size=batch_size, shuffle=shuffle, seed=seed)
            batches = []
            for batch in loader:
                out = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 token_type_ids=batch.get("token_type_ids"), output_hidden_states=True)
                batches.append({"inputs_embeds": out.hidden_states[n_layers - top_layers].detach(),
                                "attention_mask": batch["attention_mask"], "labels": batch["labels"]})
            return batches

        train_batches, eval_batches = cache(subsets["train"], True), cache(subsets["test"], False)
        template = copy.deepcopy(model)
        template.bert.embeddings = CachedEmbeddings()
        template.bert.encoder.layer = nn.ModuleList(list(model.bert.encoder.layer)[n_layers - top_layers:])
        return cls(template, train_batches, eval_batches, epochs, lr)

    def theta0(self) -> nn.Module:
        """A fresh copy of the top model at θ0 (pre-trained top layers, seeded classifier head)."""
        return copy.deepcopy(self.template)

    def prunable_names(self, model: nn.Module) -> list[str]:
        """The encoder's linear weights (the BERT-ticket setting): query, key, value, attention output, FFN."""
        from compresslib.prune import prunable_names

        return prunable_names(model)

    def train(self, model: nn.Module, *, after_step=None, desc: str = "fine-tuning") -> list[dict]:
        """Fine-tune ``model`` in place with ``compresslib.training.fit``; ``after_step(model)`` runs after
        every optimizer step (what keeps a mask applied)."""
        from compresslib.training import fit

        return fit(model, self.train_batches, epochs=self.epochs, lr=self.lr, after_step=after_step, desc=desc,
                   device=torch.device("cpu"))

    def accuracy(self, model: nn.Module) -> float:
        """Accuracy on the cached evaluation subset."""
        from compresslib.training import accuracy

        return accuracy(model, self.eval_batches, device=torch.device("cpu"))


def plot_sparsity_sweep(curves: dict[str, tuple[list[float], list[float]]], *, full_accuracy: float | None = None,
                        title: str = ""):
    """Accuracy (y) against sparsity (x), one line per method (``{label: (sparsities, accuracies)}``), with the
    unpruned model as a dashed line."""
    from compresslib.plots import plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, (sparsities, accuracies)) in enumerate(curves.items()):
        ax.plot([100 * s for s in sparsities], [100 * a for a in accuracies], "o-", color=f"C{i}", label=label)
    if full_accuracy is not None:
        ax.axhline(100 * full_accuracy, color="black", ls="--", lw=1, label="full model")
    ax.set_xlabel("sparsity of the prunable weights (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
