"""The pruning mask: a named set of 0/1 tensors that knows its sparsity and only shrinks.

Modelled on OpenLTH's ``pruning/mask.py``: a mapping from parameter name to a tensor of the
parameter's shape, 1 where the weight is kept and 0 where it is pruned. The invariants are checked
where they can break: on construction and assignment (only 0 and 1, nothing else) and between
rounds (:meth:`Mask.check_shrinks`: a weight pruned once stays pruned).

Masks are stored as ``torch.bool`` (so they cannot hold anything but 0/1), are multiplied in as the
weight's dtype, and are saved as ``uint8`` safetensors.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch

from compresslib.files import atomic_path


def _as_bool(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if value.dtype == torch.bool:
        return value.detach().clone()
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"mask[{name!r}] holds non-finite values; a mask holds only 0 and 1")
    ok = (value == 0) | (value == 1)
    if not bool(ok.all()):
        bad = value[~ok].flatten()[:3].tolist()
        raise ValueError(f"mask[{name!r}] must hold only 0 and 1, found e.g. {bad}")
    return (value != 0).detach().clone()


class Mask(Mapping):
    """Named 0/1 tensors: ``mask[name]`` is 1 (kept) or 0 (pruned) for each weight of parameter ``name``.

    Sparsity is the fraction of zeros: per layer ``s_l = #zeros(m_l) / numel(m_l)`` and globally
    ``s = sum_l #zeros(m_l) / sum_l numel(m_l)``.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor] | None = None):
        self._masks: dict[str, torch.Tensor] = {}
        for name, value in (tensors or {}).items():
            self[name] = value

    # --- mapping -------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._masks[name]

    def __setitem__(self, name: str, value) -> None:
        if not isinstance(name, str):
            raise ValueError(f"mask names are parameter names (str), got {name!r}")
        self._masks[name] = _as_bool(name, value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, {self.numel} weights, sparsity={self.sparsity:.4f})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Mask):
            return NotImplemented
        return self.keys() == other.keys() and all(torch.equal(self[k], other[k]) for k in self)

    __hash__ = None

    # --- constructors --------------------------------------------------------------------------
    @classmethod
    def ones_like(cls, model_or_tensors, names=None) -> "Mask":
        """The mask that keeps everything, for ``names`` of a model (or every tensor of a mapping)."""
        tensors = _named_tensors(model_or_tensors, names)
        return cls({name: torch.ones_like(t, dtype=torch.bool) for name, t in tensors.items()})

    @classmethod
    def from_weights(cls, model_or_tensors, names=None) -> "Mask":
        """The mask of the non-zero entries of the named weights (what a pruned checkpoint implies)."""
        tensors = _named_tensors(model_or_tensors, names)
        return cls({name: t.detach() != 0 for name, t in tensors.items()})

    # --- sparsity ------------------------------------------------------------------------------
    @property
    def numel(self) -> int:
        return sum(m.numel() for m in self._masks.values())

    @property
    def num_zeros(self) -> int:
        return sum(int((~m).sum()) for m in self._masks.values())

    @property
    def num_ones(self) -> int:
        return self.numel - self.num_zeros

    @property
    def sparsity(self) -> float:
        """Global fraction of pruned weights over all the mask's tensors (0 for an empty mask)."""
        n = self.numel
        return self.num_zeros / n if n else 0.0

    @property
    def density(self) -> float:
        return 1.0 - self.sparsity

    def layer_sparsity(self) -> dict[str, float]:
        """Fraction of pruned weights in each tensor."""
        return {name: float((~m).sum()) / m.numel() for name, m in self._masks.items()}

    # --- invariants ----------------------------------------------------------------------------
    def check_shrinks(self, previous: "Mask") -> None:
        """Raise unless this mask prunes everything ``previous`` pruned (masks only shrink across rounds)."""
        if set(previous) != set(self):
            raise ValueError(
                f"masks cover different parameters: only in previous {sorted(set(previous) - set(self))}, "
                f"only in this one {sorted(set(self) - set(previous))}"
            )
        for name in self:
            if previous[name].shape != self[name].shape:
                raise ValueError(f"mask[{name!r}] has shape {tuple(self[name].shape)}, previous {tuple(previous[name].shape)}")
            regrown = self[name] & ~previous[name]
            if bool(regrown.any()):
                raise ValueError(f"mask[{name!r}] keeps {int(regrown.sum())} weights that the previous mask pruned; masks may only shrink")

    # --- conversion and files ------------------------------------------------------------------
    def float(self, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
        """``mask[name]`` as 0./1. in ``like``'s dtype and device (float32 CPU by default)."""
        m = self._masks[name]
        return m.to(dtype=like.dtype, device=like.device) if like is not None else m.float()

    def to(self, device) -> "Mask":
        return Mask({k: v.to(device) for k, v in self._masks.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{name: uint8 tensor}`` (a plain dict of tensors, for ``torch.save`` or safetensors)."""
        return {k: v.to(torch.uint8).cpu().contiguous() for k, v in self._masks.items()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "Mask":
        return cls(state)

    def save(self, path) -> None:
        """Write the mask as a safetensors file (``uint8`` 0/1 tensors)."""
        from safetensors.torch import save_file

        with atomic_path(path) as tmp:
            save_file(self.state_dict(), str(tmp))

    @classmethod
    def load(cls, path) -> "Mask":
        from safetensors.torch import load_file

        return cls(load_file(str(path)))


def _named_tensors(model_or_tensors, names=None) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` from a module's parameters or a mapping, restricted to ``names`` (checked)."""
    if isinstance(model_or_tensors, torch.nn.Module):
        available = dict(model_or_tensors.named_parameters())
    elif isinstance(model_or_tensors, Mapping):
        available = dict(model_or_tensors)
    else:
        raise ValueError(f"expected an nn.Module or a mapping of tensors, got {type(model_or_tensors).__name__}")
    if names is None:
        return available
    names = list(names)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown parameter names {unknown[:5]}; the model has e.g. {list(available)[:5]}")
    return {n: available[n] for n in names}
