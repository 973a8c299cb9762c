"""Weight sharing (ALBERT): one set of layer weights for all layers or for groups of consecutive layers,
built from a pre-trained encoder, and the factorised embedding (V x E then E x H).

:mod:`~compresslib.share.layers` (cross-layer sharing), :mod:`~compresslib.share.embedding`
(the factorised embedding).
"""

from compresslib.share.embedding import FactorizedEmbedding, factorize_embedding, factorize_word_embeddings
from compresslib.share.layers import layer_groups, share_layers

__all__ = ["FactorizedEmbedding", "factorize_embedding", "factorize_word_embeddings", "layer_groups", "share_layers"]
