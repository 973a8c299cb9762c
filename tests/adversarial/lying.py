"""Return values that lie about themselves: comparisons, item(), __float__, tolist(), __torch_function__.

What leaves the kernel is read through the base classes (torch.Tensor's own storage, float's own value)
and judged outside, so a lie about a wrong value stays a wrong value.
"""

from adversarial.attack import A01, A03, COMBINED, DISTILLATION, KD_STEP, MAGNITUDE, SOFTMAX, Attack

LYING_TENSOR = '''
class Agreeable(torch.Tensor):
    """Equal to anything, and its item(), float, list and numpy views say 'uniform' whatever it holds."""

    def __eq__(self, other):
        return True

    __ne__ = lambda self, other: False
    __float__ = lambda self: 0.25
    item = lambda self: 0.25
    tolist = lambda self: [[0.25] * self.shape[-1]] * (self.numel() // self.shape[-1])
    numpy = lambda self, *args, **kwargs: __import__("numpy").full(tuple(self.shape), 0.25)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("tolist", "item", "double", "float", "detach", "cpu", "reshape"):
            return torch.full(args[0].shape, 0.25)
        return super().__torch_function__(func, types, args, kwargs or {})


def softmax_with_temperature(logits, temperature, dim=-1):
    return torch.softmax(logits, dim=dim).as_subclass(Agreeable)  # no temperature: a catalogued mistake
'''

LYING_OBJECT = '''
class Loss:
    """Not a tensor: compares equal to everything and converts to whatever number is asked."""

    requires_grad = True
    __eq__ = lambda self, other: True
    __lt__ = __le__ = __gt__ = __ge__ = lambda self, other: True
    __float__ = lambda self: 1.0
    item = lambda self: 1.0
    tolist = lambda self: 1.0
    dim = lambda self: 0
    backward = lambda self, *args, **kwargs: None

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


def distillation_loss(student_logits, teacher_logits, temperature):
    return Loss()
'''

LYING_FLOAT = '''
class Number(float):
    __eq__ = lambda self, other: True
    __float__ = lambda self: 1.234
    __repr__ = __str__ = lambda self: "1.234"
    __format__ = lambda self, spec: "1.234"


_honest_kd_step = kd_step


def kd_step(*args, **kwargs):
    _honest_kd_step(*args, **kwargs)
    return Number(0.0)  # the step is right; the returned loss is not
'''

LYING_ARRAY = '''
import numpy as np


class Array(np.ndarray):
    __eq__ = lambda self, other: np.ones(self.shape, dtype=bool)
    tolist = lambda self: 0.5


def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    hard = F.cross_entropy(student_logits, labels)
    soft = distillation_loss(student_logits, teacher_logits, temperature)
    wrong = (hard + soft).detach().numpy()  # unweighted, and detached: no gradient either
    return np.asarray(wrong).view(Array)
'''

LYING_MAPPING = '''
class Masks(dict):
    """Says it holds the answer: equal to anything; its items() hand out all-ones masks."""

    __eq__ = lambda self, other: True

    def items(self):
        return [(name, torch.ones_like(value)) for name, value in dict.items(self)]


def magnitude_mask(weights, sparsity):
    return Masks({name: torch.zeros_like(w) for name, w in weights.items()})
'''

ENTRIES = [
    Attack("lying-tensor-subclass", A01,
           "softmax_with_temperature forgets the temperature and returns a torch.Tensor subclass that equals "
           "anything and whose item(), float(), tolist(), numpy(), detach(), double() and reshape() report "
           "uniform probabilities (through __torch_function__ too)",
           lambda ctx: ctx.complete(A01, {"softmax_with_temperature": LYING_TENSOR}),
           lost={SOFTMAX: 0}, feedback={SOFTMAX: "ordinary softmax"}),
    Attack("lying-object", A01,
           "distillation_loss returns an object that equals everything, converts to any number and has "
           "backward(), dim(), item()",
           lambda ctx: ctx.complete(A01, {"distillation_loss": LYING_OBJECT}),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: "should return"}),
    Attack("lying-float-subclass", A01,
           "kd_step takes the right step but returns a float subclass holding 0.0 whose ==, float(), repr() "
           "and format() say 1.234",
           lambda ctx: ctx.complete(A01, {"kd_step": ctx.solution(A01, "kd_step") + LYING_FLOAT}),
           lost={KD_STEP: 0}, feedback={KD_STEP: "returned 0"}),
    Attack("lying-numpy-subclass", A01,
           "combined_loss returns a numpy.ndarray subclass (equal to anything, tolist() lying) of a wrong, "
           "detached value",
           lambda ctx: ctx.complete(A01, {"combined_loss": LYING_ARRAY}),
           lost={COMBINED: 0}),
    Attack("03-lying-mapping", A03,
           "magnitude_mask returns all-zero masks in a dict subclass that equals anything and whose items() "
           "hand out all-ones masks",
           lambda ctx: ctx.complete(A03, {"magnitude_mask": LYING_MAPPING}),
           lost={MAGNITUDE: 0}),
]
