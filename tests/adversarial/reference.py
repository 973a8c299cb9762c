"""Answers taken from the library: the grading kit holds no reference body of an assignment being graded."""

from adversarial.attack import A01, A03, COMBINED, DISTILLATION, IMP, KD_STEP, MAGNITUDE, REMAINING, SOFTMAX, TRAIN, Attack

SEARCH = '''
import os, sys

def _reference_bodies():
    """Every file Python can see that holds a body of distillation_loss (the reference's or a solution's)."""
    found = []
    roots = [p for p in sys.path if os.path.isdir(p)] + ["/opt", "/work", "/root", "/home", "/srv", "/tmp"]
    for root in roots:
        for folder, dirs, files in os.walk(root):
            if "site-packages" in folder and "compresslib" not in folder:
                dirs[:] = [d for d in dirs if "compresslib" in d or "editable" in d]
            for name in files:
                if not name.endswith((".py", ".pyc", ".ipynb", ".json")):
                    continue
                try:
                    text = open(os.path.join(folder, name), "rb").read(4_000_000)
                except OSError:
                    continue
                # the reference body (or the notebook's solution) multiplies by temperature**2
                if b"def distillation_loss" in text and (b"temperature**2" in text or b"per_position" in text):
                    found.append(os.path.join(folder, name))
    return found

FOUND = _reference_bodies()
print("REFERENCE-FILES", FOUND)

def distillation_loss(student_logits, teacher_logits, temperature):
    import compresslib.distill.losses as losses
    return losses.distillation_loss(student_logits, teacher_logits, temperature)
'''

ENTRIES = [
    Attack("reference-every-answer", A01,
           "each answer cell imports the library's own reference (`from compresslib import distillation_loss`, ...)",
           lambda ctx: ctx.complete(A01, {
               "softmax_with_temperature": "from compresslib.distill import softmax_with_temperature\n",
               "distillation_loss": "from compresslib import distillation_loss\n",
               "combined_loss": "from compresslib.distill.losses import combined_loss\n",
               "kd_step": "from compresslib import kd_step\n"}),
           lost={SOFTMAX: 0, DISTILLATION: 0, COMBINED: 0, KD_STEP: 0},
           feedback={DISTILLATION: "locked", KD_STEP: "locked"}),
    Attack("reference-source-search", A01,
           "distillation_loss first searches every file the kernel can see (kit, site-packages, /opt, /work, "
           "/root, /home, /tmp) for an unlocked reference body, then calls the library's module directly",
           lambda ctx: ctx.complete(A01, {"distillation_loss": SEARCH}),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: "locked"},
           present=(r"REFERENCE-FILES \[\]",)),
    Attack("03-reference-every-answer", A03,
           "each answer of notebook 03 calls the library's pruning reference (magnitude_mask, prune_remaining, "
           "apply_mask, iterative_magnitude_pruning)",
           lambda ctx: ctx.complete(A03, {
               "magnitude_mask": "from compresslib.prune import magnitude_mask\n",
               "prune_remaining": "from compresslib.prune import prune_remaining\n",
               "train_with_mask": ctx.solution(A03, "train_with_mask") + "\nfrom compresslib.prune import apply_mask\n",
               "imp_round": '''
                   from compresslib.prune import iterative_magnitude_pruning

                   def imp_round(model, theta0, mask, fraction, train):
                       return iterative_magnitude_pruning(model, lambda m: train(m, mask), None, rounds=1, fraction=fraction)
               '''}),
           lost={MAGNITUDE: 0, REMAINING: 0, TRAIN: 0, IMP: 0}, feedback={MAGNITUDE: "locked"}),
]
