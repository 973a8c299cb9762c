"""Tiny hand-sized models for the tests of quantisation, low-rank factorisation, sharing and the ledger:
small enough that every count can be written down by hand."""

import torch
from transformers import BertConfig, BertForSequenceClassification

VOCAB, HIDDEN, HEADS, INTERMEDIATE = 50, 16, 4, 32


def tiny_bert(layers: int = 2, seed: int = 0) -> BertForSequenceClassification:
    """A BERT classifier with hidden size 16, 4 heads, FFN size 32, 2 labels and ``layers`` layers, in eval mode."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=layers, num_attention_heads=HEADS,
                        intermediate_size=INTERMEDIATE, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


def token_batch(batch: int = 3, length: int = 7, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(1, VOCAB, (batch, length), generator=generator),
            "attention_mask": torch.ones(batch, length, dtype=torch.long)}
