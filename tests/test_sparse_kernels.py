"""CSR kernels for an unstructured-pruned model: the same outputs as the masked dense model, the kept entries only."""

import copy

import pytest
import torch
from torch import nn

from compresslib.prune import apply_mask, magnitude_mask, prunable_names
from compresslib.prune.sparse_kernels import CSRLinear, to_sparse_kernels
from tiny_models import tiny_bert, token_batch


def test_csr_linear_is_the_masked_dense_product():
    torch.manual_seed(0)
    linear = nn.Linear(6, 5)
    keep = torch.rand(5, 6) > 0.7
    x = torch.randn(2, 3, 6)
    sparse = CSRLinear(linear, keep)
    expected = x @ (linear.weight * keep).T + linear.bias
    torch.testing.assert_close(sparse(x), expected)
    assert sparse.weight.values().numel() == int(keep.sum())  # pruned entries are not stored
    with pytest.raises(ValueError, match="shape"):
        CSRLinear(linear, keep.T)


def test_a_bert_on_csr_kernels_gives_the_masked_models_logits():
    model = tiny_bert(layers=2)
    mask = magnitude_mask(model, 0.8, names=prunable_names(model))
    masked = apply_mask(copy.deepcopy(model), mask).eval()
    sparse = to_sparse_kernels(copy.deepcopy(masked), mask).eval()
    batch = token_batch()
    with torch.no_grad():
        torch.testing.assert_close(sparse(**batch).logits, masked(**batch).logits, atol=1e-5, rtol=1e-4)
    assert isinstance(sparse.bert.encoder.layer[0].attention.self.query, CSRLinear)
    with pytest.raises(ValueError, match="nn.Linear"):
        to_sparse_kernels(copy.deepcopy(model), magnitude_mask(model, 0.5, names=["bert.embeddings.word_embeddings.weight"]))
