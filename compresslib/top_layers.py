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

    def majority_accuracy(self) -> float:
        """Accuracy of always guessing the evaluation subset's most frequent class (what a model that learned
        nothing scores)."""
        from compresslib.stats import majority_class_accuracy

        return majority_class_accuracy(torch.cat([b["labels"] for b in self.eval_batches]).numpy())


def plot_sparsity_sweep(curves: dict[str, tuple[list[float], list[float]]], *, full_accuracy: float | None = None,
                        title: str = "", majority: float | None = None):
    """Accuracy (y) against sparsity (x), one line per method (``{label: (sparsities, accuracies)}``), with the
    unpruned model as a dashed line and, given ``majority``, the majority class as a dotted one."""
    from compresslib.plots import plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, (sparsities, accuracies)) in enumerate(curves.items()):
        ax.plot([100 * s for s in sparsities], [100 * a for a in accuracies], "o-", color=f"C{i}", label=label)
    if full_accuracy is not None:
        ax.axhline(100 * full_accuracy, color="black", ls="--", lw=1, label="full model")
    if majority is not None:
        ax.axhline(100 * majority, color="black", ls=":", lw=1, label="majority class (a constant guess)")
    ax.set_xlabel("sparsity of the prunable weights (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the reference run's faster variant


class TopLayersClassifier(nn.Module):
    r"""The top ``top_layers`` encoder layers of a BERT sequence classifier, its pooler, dropout and classifier,
    fed with cached hidden states (what the lottery-ticket reference run trains; the notebook keeps
    :class:`TopLayersTask`).

    Parameter names are the full model's (``bert.encoder.layer.5.attention.self.query.weight``,
    ``bert.pooler.dense.weight``, ``classifier.weight``), so masks, prunable sets and rewinding rules written
    for the full model apply unchanged, and :func:`assemble` loads the trained top back into a full model.

    **The last layer computes the [CLS] position only** (``cls_only=True``): the classifier reads the pooler,
    which reads the last layer's output at position 0, and that output depends on every position's keys and
    values but on no other position's query, attention output or feed-forward block. So the last layer's keys
    and values are computed for every token, its query, attention output projection and FFN for [CLS] alone:
    the logits, the loss and every gradient are the full layer's (up to float rounding), at about a fifth of
    the layer's cost for 30-token snippets. With :math:`H` heads of size :math:`d`, keys :math:`K`, values
    :math:`V` of every position and the query :math:`q` of [CLS]:

    .. math:: a = \mathrm{LN}\bigl(x_0 + W_O\,[\mathrm{softmax}(q_h K_h^\top/\sqrt d + m)\,V_h]_{h}\bigr), \quad
              y_0 = \mathrm{LN}\bigl(a + W_2\,\mathrm{gelu}(W_1 a)\bigr)

    with :math:`m` = 0 for real tokens and :math:`-\infty` for padding. Every layer below the last runs in full
    with the same formulas (dropout on the attention probabilities and after each projection when training, as
    in BERT). Inputs: ``inputs_embeds`` ``[B, T, hidden]`` (the cached output of the layer below) and
    ``attention_mask`` ``[B, T]`` (1 for tokens, 0 for padding); output: logits ``[B, num_labels]``.
    """

    def __init__(self, model: nn.Module, top_layers: int, *, cls_only: bool = True):
        super().__init__()
        layers = list(model.bert.encoder.layer)
        if isinstance(top_layers, bool) or not isinstance(top_layers, int) or not 1 <= top_layers <= len(layers):
            raise ValueError(f"top_layers must be an integer in [1, {len(layers)}], got {top_layers!r}")
        self.first_layer = len(layers) - top_layers
        self.cls_only = bool(cls_only)
        self.bert = nn.Module()
        self.bert.encoder = nn.Module()
        self.bert.encoder.layer = nn.ModuleDict(
            {str(i): copy.deepcopy(layers[i]) for i in range(self.first_layer, len(layers))})
        self.bert.pooler = copy.deepcopy(model.bert.pooler)
        self.dropout = copy.deepcopy(model.dropout)
        self.classifier = copy.deepcopy(model.classifier)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if inputs_embeds.dim() != 3 or attention_mask.shape != inputs_embeds.shape[:2]:
            raise ValueError(f"inputs_embeds must be [B, T, hidden] and attention_mask [B, T]; got "
                             f"{tuple(inputs_embeds.shape)} and {tuple(attention_mask.shape)}")
        keep = attention_mask.bool()[:, None, None, :]  # [B, 1, 1, T]: attend to real tokens only
        hidden = inputs_embeds
        layers = list(self.bert.encoder.layer.values())
        for i, layer in enumerate(layers):
            last = i == len(layers) - 1
            hidden = _bert_layer(layer, hidden, keep, queries=hidden[:, :1] if last and self.cls_only else hidden)
        pooled = self.bert.pooler.activation(self.bert.pooler.dense(hidden[:, 0]))
        return self.classifier(self.dropout(pooled))


def _bert_layer(layer: nn.Module, hidden: torch.Tensor, keep: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """One BERT layer's output at the positions of ``queries`` (a prefix of ``hidden``'s positions): self-attention
    over every position of ``hidden`` (masked by ``keep``), the attention output block and the FFN block."""
    sa = layer.attention.self
    heads, size = sa.num_attention_heads, sa.attention_head_size

    def split(x):  # [B, T, heads * size] -> [B, heads, T, size]
        return x.view(x.shape[0], x.shape[1], heads, size).transpose(1, 2)

    context = nn.functional.scaled_dot_product_attention(
        split(sa.query(queries)), split(sa.key(hidden)), split(sa.value(hidden)), attn_mask=keep,
        dropout_p=sa.dropout.p if sa.training else 0.0)
    context = context.transpose(1, 2).reshape(queries.shape[0], queries.shape[1], heads * size)
    attended = layer.attention.output(context, queries)  # dense, dropout, LayerNorm(x + queries)
    return layer.output(layer.intermediate(attended), attended)  # FFN in, gelu, FFN out, dropout, LayerNorm


def assemble(top: TopLayersClassifier, model: nn.Module) -> nn.Module:
    """``model`` (a full classifier whose bottom layers are the ones the cache came from) with the top layers,
    pooler and classifier of ``top`` loaded in place; returns ``model``."""
    missing = [k for k in top.state_dict() if k not in model.state_dict()]
    if missing:
        raise ValueError(f"the full model lacks {missing[:3]}: assemble a top model into the model it was cut from")
    model.load_state_dict(top.state_dict(), strict=False)
    return model


@dataclass
class CachedSplit:
    """One split's cached hidden states: ``hidden[i]`` is example ``i``'s ``[length_i, hidden]`` tensor (no padding),
    ``labels[i]`` its class. :meth:`batches` pads each batch to its longest member."""

    hidden: list
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.hidden)

    def batches(self, batch_size: int, *, shuffle: bool, seed: int = 0) -> "CachedBatches":
        return CachedBatches(self, batch_size, shuffle=shuffle, seed=seed)


class CachedBatches:
    """An iterable of padded batches ``{"inputs_embeds", "attention_mask", "labels"}`` over a :class:`CachedSplit`.

    ``shuffle=True``: a fresh permutation per pass, drawn from a generator seeded with ``seed`` when this object
    is made, so two objects with the same seed replay the same batches in the same order (what rewinding to a
    step of an earlier run needs). ``shuffle=False``: examples sorted by length (little padding), and
    :attr:`order` says which example each position of the concatenated batches is."""

    def __init__(self, split: CachedSplit, batch_size: int, *, shuffle: bool, seed: int = 0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(int(seed))
        lengths = torch.tensor([len(h) for h in split.hidden])
        self.order = torch.sort(lengths, stable=True).indices

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.split), generator=self.generator) if self.shuffle else self.order
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size].tolist()
            rows = [self.split.hidden[i] for i in index]
            yield {"inputs_embeds": nn.utils.rnn.pad_sequence(rows, batch_first=True),
                   "attention_mask": nn.utils.rnn.pad_sequence([torch.ones(len(r), dtype=torch.long) for r in rows],
                                                               batch_first=True),
                   "labels": self.split.labels[index]}


@torch.no_grad()
def cache_hidden_states(model: nn.Module, dataset, tokenizer, *, layer: int, batch_size: int = 128,
                        desc: str = "caching") -> CachedSplit:
    """The output of the first ``layer`` encoder layers of ``model`` (eval mode: no dropout) for every example of
    a tokenised ``dataset``, unpadded, in the dataset's order (computed in length-sorted batches)."""
    from tqdm.auto import tqdm

    from compresslib.training import make_loader

    n_layers = len(model.bert.encoder.layer)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_layers:
        raise ValueError(f"layer must be an integer in [0, {n_layers - 1}] (0: the embeddings' output), got {layer!r}")
    was_training = model.training
    model.eval()
    lengths = [len(ids) for ids in dataset["input_ids"]]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    loader = make_loader(dataset.select(order), tokenizer, batch_size=batch_size, shuffle=False)
    device = next(model.parameters()).device
    hidden = [None] * len(order)
    position = 0
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=1.0):
        out = model.bert(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                         token_type_ids=batch["token_type_ids"].to(device) if "token_type_ids" in batch else None,
                         output_hidden_states=True)
        states = out.hidden_states[layer].float().cpu()
        for row, length in zip(states, batch["attention_mask"].sum(1).tolist()):
            hidden[order[position]] = row[:length].clone()
            position += 1
    model.train(was_training)
    return CachedSplit(hidden, torch.tensor(dataset["label"]))
