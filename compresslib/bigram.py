"""A word-bigram language model of the polarity snippets: a small teacher over a real vocabulary.

The lecture shows BERT's distribution over the word after "a beautiful": soft targets spread over
*day, life, future, story, ...*. A bigram model estimated from the embedded corpus gives the same
kind of teacher in a second, on a CPU, with thousands of classes instead of two:

    q(w_t = k | w_{t-1}) = (c(w_{t-1}, k) + s) / (c(w_{t-1}) + s |V|)

with add-``s`` smoothing; its logits are the log-probabilities.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch

TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,!?;]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return TOKEN.findall(text.lower())


@dataclass
class BigramTeacher:
    vocab: list[str]
    counts: torch.Tensor  # (V, V) bigram counts, row = previous word
    smoothing: float

    @classmethod
    def from_texts(cls, texts, *, vocab_size: int = 2000, smoothing: float = 0.001) -> "BigramTeacher":
        """Estimate from ``texts`` over the ``vocab_size`` most frequent words (pairs with a rarer word are skipped)."""
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {vocab_size}")
        if smoothing <= 0:
            raise ValueError(f"smoothing must be positive, got {smoothing}")
        tokenised = [words(t) for t in texts]
        vocab = [w for w, _ in Counter(w for sent in tokenised for w in sent).most_common(vocab_size)]
        index = {w: i for i, w in enumerate(vocab)}
        flat = []
        for sent in tokenised:
            ids = [index.get(w, -1) for w in sent]
            flat += [a * len(vocab) + b for a, b in zip(ids, ids[1:]) if a >= 0 and b >= 0]
        flat = torch.tensor(flat, dtype=torch.long)
        counts = torch.bincount(flat, minlength=len(vocab) ** 2).reshape(len(vocab), len(vocab)).float()
        return cls(vocab, counts, smoothing)

    def index(self, word: str) -> int:
        try:
            return self.vocab.index(word)
        except ValueError:
            raise ValueError(f"{word!r} is not in the teacher's vocabulary of {len(self.vocab)} words") from None

    def logits(self, previous_word: str) -> torch.Tensor:
        """Log-probabilities (V,) of the next word after ``previous_word``."""
        row = self.counts[self.index(previous_word)] + self.smoothing
        return torch.log(row / row.sum())

    def top(self, probs: torch.Tensor, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most probable words under ``probs`` with their probabilities."""
        values, ids = probs.topk(k)
        return [(self.vocab[i], v) for i, v in zip(ids.tolist(), values.tolist())]
