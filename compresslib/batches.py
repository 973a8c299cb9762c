"""What a batch is, for every training step and evaluation in the kit.

A batch is a mapping of tensors: the model's keyword arguments (``input_ids``, ``attention_mask``, ...
or whatever the model takes), plus keys the model must not see:

* :data:`LABELS_KEY` (``"labels"``): the ground-truth class of each example;
* :data:`TEACHER_LOGITS_KEY` (``"teacher_logits"``): soft targets cached from a teacher;
* :data:`EXAMPLE_INDEX_KEY` (``"example_index"``): each example's row in a cache of teacher outputs.

A batch may merge two *streams*, e.g. a labelled batch and a batch of an unlabelled transfer set: the
transfer stream's keys carry :data:`TRANSFER_PREFIX` (``"transfer.input_ids"``, ``"transfer.teacher_logits"``,
...) and :func:`split_streams` takes them apart again.

This module sits below the technique packages (``distill/``, ``prune/``, ...) and ``training.py``, so
they share the conventions without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

LABELS_KEY = "labels"
TEACHER_LOGITS_KEY = "teacher_logits"
EXAMPLE_INDEX_KEY = "example_index"
NOT_MODEL_INPUTS = (LABELS_KEY, TEACHER_LOGITS_KEY, EXAMPLE_INDEX_KEY)
TRANSFER_PREFIX = "transfer."


def model_inputs(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keyword arguments a model takes from ``batch``: every entry except labels, cached teacher
    logits and example indices."""
    return {k: v for k, v in batch.items() if k not in NOT_MODEL_INPUTS}


def logits_of(output) -> torch.Tensor:
    """The logits of a model's output: a tensor, or a Hugging Face output with ``.logits``."""
    return output.logits if hasattr(output, "logits") else output


def split_streams(batch: Mapping[str, torch.Tensor], prefix: str = TRANSFER_PREFIX) -> tuple[dict, dict]:
    """``(main, prefixed)``: the entries of ``batch`` without ``prefix``, and those with it (prefix removed)."""
    main = {k: v for k, v in batch.items() if not k.startswith(prefix)}
    prefixed = {k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix)}
    return main, prefixed
