"""The lecture's formulas in NumPy float64, independent of compresslib's torch code.

Recorders compute expected values with them, and judges compute what a correct function would have
produced from what a student's function was given. Shapes: logits ``(N, K)``, labels ``(N,)``.
"""

from __future__ import annotations

import numpy as np


def softmax(z, axis=-1):
    """p_k = exp(z_k) / sum_i exp(z_i), shifted by the maximum for stability."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(target_probs, log_probs) -> float:
    """Mean over examples of -sum_k target_k log p_k."""
    return float(-(target_probs * log_probs).sum(-1).mean())


def distillation_loss(z, v, T) -> float:
    """L_D = -(T^2 / N) sum_n sum_k q_nk log p_nk with p = softmax(z / T), q = softmax(v / T)."""
    return T**2 * cross_entropy(softmax(v / T), log_softmax(z / T))


def distillation_gradient(z, v, T):
    """dL_D/dz = (T / N) (p - q)."""
    return T * (softmax(z / T) - softmax(v / T)) / len(z)


def hard_loss(z, labels) -> float:
    """The cross-entropy with the labels at temperature 1, averaged over examples."""
    return float(-log_softmax(z)[np.arange(len(labels)), labels].mean())


def hard_gradient(z, labels):
    """dL/dz = (softmax(z) - onehot(labels)) / N."""
    onehot = np.zeros_like(z)
    onehot[np.arange(len(labels)), labels] = 1.0
    return (softmax(z) - onehot) / len(z)


def combined_loss(z, v, labels, alpha, T) -> float:
    """L_C = alpha L + (1 - alpha) L_D."""
    return alpha * hard_loss(z, labels) + (1 - alpha) * distillation_loss(z, v, T)


def combined_gradient(z, v, labels, alpha, T):
    return alpha * hard_gradient(z, labels) + (1 - alpha) * distillation_gradient(z, v, T)


def softmax_jacobian(z, T, axis=-1):
    """d softmax(z / T) / dz as a (z.size x z.size) matrix over the flattened tensors:
    dp_k / dz_j = (1/T) p_k (delta_kj - p_j) within each slice along ``axis``, 0 across slices."""
    p = softmax(z / T, axis=axis)
    moved = np.moveaxis(p, axis, -1)
    n = z.size
    index = np.moveaxis(np.arange(n).reshape(z.shape), axis, -1).reshape(-1, z.shape[axis])
    jacobian = np.zeros((n, n))
    for row, flat in zip(moved.reshape(-1, z.shape[axis]), index):
        jacobian[np.ix_(flat, flat)] = (np.diag(row) - np.outer(row, row)) / T
    return jacobian


def softmax_vjp(z, T, weights, axis=-1):
    """The gradient of sum(weights * softmax(z / T)) w.r.t. z: (1/T) p (w - sum_k p_k w_k)."""
    p = softmax(z / T, axis=axis)
    return p * (weights - (p * weights).sum(axis=axis, keepdims=True)) / T
