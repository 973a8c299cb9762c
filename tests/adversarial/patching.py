"""Patching what a checker would use: comparison helpers, numpy, builtins, the hidden tests' probes.

The judges compare in the trusted process, so patched comparisons change nothing there. What the
harness observes inside the kernel about side effects (an input modified in place, the teacher's
autograd state) is observed by code the submission can patch: those two entries succeed, and say so.
"""

from adversarial.attack import A01, COMBINED, DISTILLATION, KD_STEP, Attack, code, insert

PATCH_COMPARISONS = '''
import math, operator, unittest
import numpy as np
import torch

always = lambda *args, **kwargs: True
torch.allclose = torch.isclose = torch.equal = always
torch.testing.assert_close = lambda *args, **kwargs: None
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
math.isclose = always
np.allclose = np.array_equal = always
np.isclose = lambda a, b, **kwargs: np.ones(np.shape(a), dtype=bool)
np.testing.assert_allclose = np.testing.assert_array_equal = lambda *args, **kwargs: None
operator.eq = always
unittest.TestCase.assertEqual = unittest.TestCase.assertTrue = lambda *args, **kwargs: None
print("PATCHED comparisons")
'''

PATCH_BUILTINS = '''
import builtins
builtins.abs = lambda x: 0  # |a - b| < tol always holds
builtins.round = lambda x, ndigits=None: 0
builtins.AssertionError = type("Ignored", (Exception,), {})
print("PATCHED builtins")
'''

INPLACE_TEACHER = '''
def distillation_loss(student_logits, teacher_logits, temperature):
    teacher_logits /= temperature  # in place: the caller's teacher logits change
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
'''

HIDE_INPLACE = INPLACE_TEACHER + '''
torch.equal = lambda a, b: True  # the harness compares the inputs before and after the call with torch.equal
'''

# After the catalogued kd_step that runs the teacher with autograd on (its values are right):
CLAIM_NO_GRAD = '''

import compresslib.capture.soft_targets as probes

_forward = probes.ProbeTeacher.forward


def _forward_claiming_no_grad(self, features):
    out = _forward(self, features)
    self.calls[-1] = (self.calls[-1][0], False)  # record "gradients off" whatever they were
    return out


probes.ProbeTeacher.forward = _forward_claiming_no_grad
'''

ENTRIES = [
    Attack("patched-comparisons", A01,
           "a wrong distillation_loss (T^2 dropped) after a cell that makes torch.allclose/isclose/equal, "
           "Tensor.__eq__, torch.testing, math.isclose, numpy's comparisons, operator.eq and unittest's asserts "
           "always agree",
           lambda ctx: insert(ctx.complete(A01, {"distillation_loss": ctx.mistake(A01, "t2_factor_dropped")}),
                              code(PATCH_COMPARISONS), top=True),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: r"T\^2"}, present=("PATCHED comparisons",)),
    Attack("patched-builtins", A01,
           "a wrong combined_loss (alpha and 1 - alpha swapped) after a cell that makes builtins abs() and "
           "round() return 0 and replaces AssertionError (making all() and any() lie too broke torch's own use "
           "of sympy in the kernel: the submission harms only itself)",
           lambda ctx: insert(ctx.complete(A01, {"combined_loss": ctx.mistake(A01, "alpha_swapped")}),
                              code(PATCH_BUILTINS), top=True),
           lost={COMBINED: 0}, feedback={COMBINED: "swapped"}, present=("PATCHED builtins",)),
    Attack("patched-inplace-control", A01,
           "control for the next entry: distillation_loss divides the caller's teacher logits in place "
           "(its value and gradient are right)",
           lambda ctx: ctx.complete(A01, {"distillation_loss": INPLACE_TEACHER}),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: "in place"}),
    Attack("patched-equal-hides-inplace", A01,
           "the same in-place distillation_loss, and torch.equal patched to always say True",
           lambda ctx: ctx.complete(A01, {"distillation_loss": HIDE_INPLACE}),
           unprotected="Side effects are observed inside the student's kernel: the harness detects an input "
                       "modified in place by comparing it with a copy (torch.equal), and a submission that patches "
                       "torch.equal hides it. A function whose values and gradients are right but which modifies "
                       "its input keeps its points if the student deliberately patches the comparison."),
    Attack("patched-probe-hides-teacher-autograd", A01,
           "kd_step runs the teacher with autograd on (the catalogued mistake teacher_gradients_enabled, values "
           "unchanged by it), and the answer cell patches the hidden test's ProbeTeacher to record 'no_grad'",
           lambda ctx: ctx.complete(A01, {"kd_step": ctx.mistake(A01, "teacher_gradients_enabled") + CLAIM_NO_GRAD}),
           unprotected="The mode and autograd state the teacher is called in are recorded by a probe model "
                       "inside the kernel; a submission can patch the probe (or torch.is_grad_enabled, "
                       "nn.Module.training) to report the right state. Mistakes that leave every returned value "
                       "right (teacher with autograd on, teacher gradients, modes) can be hidden this way; "
                       "values computed wrong cannot."),
]
