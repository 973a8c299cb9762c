r"""A smaller student made from its teacher by keeping some of its layers (DistilBERT's recipe).

DistilBERT (Sanh et al., 2019) halves BERT's depth and initialises the student "by taking one layer
out of two, leveraging the common hidden size between student and teacher". The student keeps the
teacher's width, so every tensor of a kept layer fits the student as it is:

.. code-block:: text

    teacher layers   0  1  2  3  4  5          layers="every_other" -> [0, 2, 4]
    student layers   0     1     2             student layer i  <-  teacher layer layers[i]

:func:`init_student_from_teacher` returns a real ``transformers`` model of the teacher's class with
``config.num_hidden_layers = len(layers)``, whose tensors are *copies* of the teacher's (editing or
training the student never changes the teacher):

* the embeddings (word, position, token-type, their LayerNorm) are copied;
* encoder layer ``i`` of the student is a copy of teacher layer ``layers[i]``;
* the task head (BERT's pooler and classifier; DistilBERT's pre-classifier and classifier;
  RoBERTa's classification head) is copied when ``copy_head=True``.

Token-type embeddings and the pooler. DistilBERT *removed* both: its token-type embeddings served
BERT's sentence-pair pre-training and its pooler the next-sentence-prediction task. This student
keeps the teacher's architecture instead (so it is a ``BertForSequenceClassification`` that
``from_pretrained`` loads with the teacher's class and tokenizer) and copies both:

* for single-sentence inputs every token has type 0, so the token-type embedding adds the same
  vector to every position; the copied layers were trained to see that vector, and dropping it
  would shift every input they receive (DistilBERT could drop it because it then re-trained the
  whole student on a large corpus);
* in ``BertForSequenceClassification`` the classifier reads ``pooler(h_[CLS])``, so the pooler is
  part of the fine-tuned task head: it is copied together with the classifier, and the copied head
  sees the same kind of [CLS] vector it was trained on.

Supported: BERT-family encoders whose layers sit in ``<base>.encoder.layer`` (BERT, RoBERTa,
MiniLM, ...) or ``<base>.transformer.layer`` (DistilBERT), for any head class (sequence
classification, masked LM, bare encoder).
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Sequence
from numbers import Integral

import torch
from torch import nn
from compresslib.answers import reference_answer
from compresslib.architecture import layer_container as _layer_container

EVERY_OTHER = "every_other"
RANDOM = "random"
FIRST = "first"

def num_layers_of(model: nn.Module) -> int:
    """Number of encoder layers of a BERT-family model."""
    return len(_layer_container(model)[1])


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


@reference_answer("02_distilbert_student")
def select_layers(num_teacher_layers: int, layers="every_other") -> list[int] | None:
    """The teacher layers a student keeps, in order, or ``None`` for a randomly initialised student.

    Args:
        num_teacher_layers: the teacher's depth ``L``.
        layers: one of

            * ``"every_other"``: ``[0, 2, 4, ...]``, i.e. ``ceil(L / 2)`` layers (DistilBERT's one out of two);
            * ``("first", k)``: ``[0, 1, ..., k - 1]`` (the bottom ``k`` layers; a common mistake for
              ``"every_other"``, and a baseline);
            * an explicit list of teacher layer indices, strictly increasing, each in ``[0, L)``
              (e.g. DistilBERT's published ``[0, 2, 4, 7, 9, 11]`` for a 12-layer teacher);
            * ``"random"`` or ``("random", k)``: no layer is copied; the student has ``k`` layers
              (default ``ceil(L / 2)``) and random weights (the no-initialisation baseline).

    Raises:
        ValueError: for an empty list, an index out of range, a repeated or unsorted index, or an
            unknown choice, naming what was wrong.
    """
    num_teacher_layers = _check_int(num_teacher_layers, "num_teacher_layers")
    if num_teacher_layers < 1:
        raise ValueError(f"num_teacher_layers must be at least 1, got {num_teacher_layers}")
    if isinstance(layers, str):
        if layers == EVERY_OTHER:
            return list(range(0, num_teacher_layers, 2))
        if layers == RANDOM:
            return None
        raise ValueError(
            f"layers must be 'every_other', 'random', ('first', k), ('random', k) or a list of layer "
            f"indices, got the string {layers!r}"
        )
    if isinstance(layers, tuple) and len(layers) == 2 and layers[0] in (FIRST, RANDOM):
        k = _check_int(layers[1], f"k in layers=({layers[0]!r}, k)")
        if not 1 <= k <= num_teacher_layers:
            raise ValueError(f"k in layers=({layers[0]!r}, k) must lie in [1, {num_teacher_layers}], got {k}")
        return list(range(k)) if layers[0] == FIRST else None
    if isinstance(layers, torch.Tensor):
        layers = layers.tolist()
    if not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a string, a ('first', k) pair or a list of layer indices, got {layers!r}")
    chosen = [_check_int(i, "each entry of layers") for i in layers]
    if not chosen:
        raise ValueError("layers is empty: a student needs at least one layer")
    outside = [i for i in chosen if not 0 <= i < num_teacher_layers]
    if outside:
        raise ValueError(
            f"layers {chosen} has indices {outside} outside [0, {num_teacher_layers - 1}] "
            f"(the teacher has {num_teacher_layers} layers, numbered from 0)"
        )
    repeated = sorted({i for i in chosen if chosen.count(i) > 1})
    if repeated:
        raise ValueError(f"layers {chosen} repeats {repeated}: each teacher layer can be copied once")
    if chosen != sorted(chosen):
        raise ValueError(
            f"layers {chosen} is not increasing: student layer i copies teacher layer layers[i], and the "
            f"layers must keep the teacher's order (did you mean {sorted(chosen)}?)"
        )
    return chosen


def _random_depth(num_teacher_layers: int, layers) -> int:
    if isinstance(layers, tuple):
        return int(layers[1])
    return (num_teacher_layers + 1) // 2


@reference_answer("02_distilbert_student")
def init_student_from_teacher(
    teacher: nn.Module,
    layers="every_other",
    *,
    copy_head: bool = True,
    seed: int | None = None,
) -> nn.Module:
    """A student with fewer layers, initialised from ``teacher`` (DistilBERT's layer-skipping recipe).

    Args:
        teacher: a ``transformers`` BERT-family model (``BertForSequenceClassification``,
            ``RobertaForSequenceClassification``, ``DistilBertForSequenceClassification``, ``BertModel``, ...).
        layers: which teacher layers the student keeps; see :func:`select_layers`
            (``"every_other"``, ``("first", k)``, a list such as ``[0, 2, 4]``, ``"random"``/``("random", k)``).
        copy_head: copy the task head (pooler + classifier for BERT) too; ``False`` leaves it freshly
            initialised (from ``seed``).
        seed: seeds the initialisation of whatever is not copied (everything for ``"random"``).

    Returns:
        a model of the teacher's class, on the teacher's device and dtype and in its train/eval mode,
        with ``config.num_hidden_layers == len(layers)``. All its tensors are new storage: nothing is
        shared with the teacher. The list of kept layers is recorded as ``config.student_of_teacher_layers``
        (``None`` for a random student), so it survives ``save_pretrained``.

    Raises:
        ValueError: for a model that is not BERT-family or a bad ``layers`` (before any work is done).
    """
    if not isinstance(teacher, nn.Module) or not hasattr(teacher, "config"):
        raise ValueError(f"teacher must be a transformers model with a .config, got {type(teacher).__name__}")
    container_name, container = _layer_container(teacher)
    num_teacher = len(container)
    chosen = select_layers(num_teacher, layers)
    depth = _random_depth(num_teacher, layers) if chosen is None else len(chosen)

    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = depth
    config.student_of_teacher_layers = chosen
    if seed is not None:
        torch.manual_seed(seed)
        random.seed(seed)
    student = type(teacher)(config)
    reference = next(teacher.parameters())
    student.to(device=reference.device, dtype=reference.dtype)

    if chosen is not None:
        student.load_state_dict(_student_state_dict(teacher, student, container_name, chosen, copy_head), strict=True)
    student.train(teacher.training)
    return student


def _student_state_dict(teacher, student, container_name, chosen, copy_head) -> dict[str, torch.Tensor]:
    """The student's state dict with the teacher's tensors renamed (layer ``layers[i]`` -> ``i``) and cloned."""
    layer_key = re.compile(re.escape(container_name) + r"\.(\d+)\.(.+)")
    student_state = student.state_dict()
    teacher_state = teacher.state_dict()
    head_prefixes = _head_prefixes(student, container_name)
    out = {}
    for key, value in student_state.items():
        match = layer_key.fullmatch(key)
        if match:
            source = f"{container_name}.{chosen[int(match.group(1))]}.{match.group(2)}"
        else:
            source = key
            if not copy_head and any(key.startswith(p) for p in head_prefixes):
                out[key] = value
                continue
        if source not in teacher_state:
            raise ValueError(f"the teacher has no tensor {source!r} for the student's {key!r}")
        out[key] = teacher_state[source].detach().clone()
    return out


def _head_prefixes(model: nn.Module, container_name: str) -> list[str]:
    """Names of the modules outside the embeddings and encoder: the pooler and the task head."""
    base_prefix = container_name.split(".")[0] + "."  # "bert." / "roberta." / "distilbert."
    prefixes = [base_prefix + "pooler."]
    for name, _ in model.named_children():
        if name + "." != base_prefix:
            prefixes.append(name + ".")
    return prefixes


def init_student_with_random_layers(source: nn.Module, num_layers: int | None = None, *, seed: int | None = None) -> nn.Module:
    """A student of ``num_layers`` randomly initialised layers (default: half of ``source``'s, rounded up) and a
    random task head, whose embeddings (word, position, token-type, their LayerNorm) are copies of ``source``'s.

    The baseline that separates the choice of layers from the embeddings: beside
    ``init_student_from_teacher(source, "every_other")`` and ``init_student_from_teacher(source, ("first", k))``
    it shares their embeddings and differs only in its layers. Copies, never shared tensors.
    """
    num_source = num_layers_of(source)
    depth = (num_source + 1) // 2 if num_layers is None else _check_int(num_layers, "num_layers")
    student = init_student_from_teacher(source, (RANDOM, depth), seed=seed)
    embeddings = source.base_model.embeddings.state_dict()
    student.base_model.embeddings.load_state_dict({k: v.detach().clone() for k, v in embeddings.items()})
    return student

