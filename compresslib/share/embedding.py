r"""ALBERT's factorised embedding: a V x E lookup table then an E x H projection, instead of V x H.

The word-embedding matrix :math:`W \in \mathbb{R}^{V \times H}` is replaced by
:math:`W \approx A B` with :math:`A` (V x E) looked up per token and :math:`B` (E x H) applied as a
linear layer without bias, both from the truncated SVD of the pre-trained :math:`W` with
:math:`\sqrt{\sigma}` on each side (:func:`compresslib.svd.low_rank_factors`). Parameters go from
:math:`V H` to :math:`V E + E H` (all-MiniLM-L6-v2: 30522 x 384 = 11.7M, over half the model, to
3.96M at E = 128); each token costs E x H multiply-adds more than a lookup.

Only the word embeddings are factorised: the position and token-type embeddings (512 x H and 2 x H)
are small and stay as they are, added in the H-dimensional space after the projection. (ALBERT
factorises the sum of all three in E dimensions; it was pre-trained that way.)
"""

from __future__ import annotations

import copy
from numbers import Integral

import torch
from torch import nn

from compresslib.svd import low_rank_factors


class FactorizedEmbedding(nn.Module):
    r"""Token ids -> :math:`B^\top`-projected rows of a V x E table: ``project(embed(ids))``, with
    ``embed`` an ``nn.Embedding(V, E)`` and ``project`` an ``nn.Linear(E, H, bias=False)``."""

    def __init__(self, num_embeddings: int, embedding_size: int, hidden_size: int, *, padding_idx: int | None = None):
        super().__init__()
        self.embed = nn.Embedding(num_embeddings, embedding_size, padding_idx=padding_idx)
        self.project = nn.Linear(embedding_size, hidden_size, bias=False)
        self.num_embeddings, self.embedding_size, self.embedding_dim = num_embeddings, embedding_size, hidden_size
        self.padding_idx = padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.embed(input_ids))

    def extra_repr(self) -> str:
        return f"{self.num_embeddings} x {self.embedding_size} -> {self.embedding_dim}"


@torch.no_grad()
def factorize_embedding(embedding: nn.Embedding, size: int) -> FactorizedEmbedding:
    """``embedding`` (V x H) as a :class:`FactorizedEmbedding` of inner size ``size`` = E (1..min(V, H)):
    ``embed.weight`` = A (V x E) and ``project.weight`` = B^T (H x E), A B the best rank-E approximation
    of the table. Same dtype, device and padding index."""
    if not isinstance(embedding, nn.Embedding):
        raise ValueError(f"embedding must be an nn.Embedding, got {type(embedding).__name__}")
    if isinstance(size, bool) or not isinstance(size, Integral):
        raise ValueError(f"size must be an integer (the inner embedding size E), got {size!r}")
    weight = embedding.weight
    a, b = low_rank_factors(weight, size)
    vocab, hidden = weight.shape
    factorized = FactorizedEmbedding(vocab, size, hidden, padding_idx=embedding.padding_idx)
    factorized = factorized.to(device=weight.device, dtype=weight.dtype)
    factorized.embed.weight.copy_(a)
    factorized.project.weight.copy_(b.T)
    return factorized


def factorize_word_embeddings(model: nn.Module, size: int, *, inplace: bool = False) -> nn.Module:
    """``model`` (a ``transformers`` model) whose input word embeddings are replaced by their
    :func:`factorize_embedding` of inner size ``size``. A copy unless ``inplace``."""
    if not hasattr(model, "get_input_embeddings"):
        raise ValueError(f"model must be a transformers model with get_input_embeddings, got {type(model).__name__}")
    model = model if inplace else copy.deepcopy(model)
    model.set_input_embeddings(factorize_embedding(model.get_input_embeddings(), size))
    return model
