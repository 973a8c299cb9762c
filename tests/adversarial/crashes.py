"""Ending the kernel: sys.exit, os._exit, a segfault, a loop that ignores interrupts, in a graded function
(it loses that function's points, the others are graded) or in a cell of its own (full marks)."""

from adversarial.attack import A01, A03, COMBINED, KD_STEP, SOFTMAX, TRAIN, Attack, code, insert, wrapped

IGNORE_INTERRUPTS = '''
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    time.sleep(0.1)
'''


def exits_in_cells(ctx):
    nb = ctx.complete(A01)
    insert(nb, code("import sys\nsys.exit(3)"), after=SOFTMAX)
    insert(nb, code("exit()"), after="test_distillation_loss")
    insert(nb, code("import os\nos._exit(1)"), after=COMBINED)
    return insert(nb, code("import ctypes\nctypes.string_at(0)"), after=KD_STEP)


ENTRIES = [
    Attack("crash-sys-exit-in-answer", A01, "softmax_with_temperature calls sys.exit(0)",
           lambda ctx: ctx.complete(A01, {"softmax_with_temperature": wrapped(
               ctx.solution(A01, "softmax_with_temperature"), "softmax_with_temperature", "import sys; sys.exit(0)")}),
           lost={SOFTMAX: 0}),
    Attack("crash-os-exit-in-answer", A01, "kd_step calls os._exit(0) (the kernel dies in its test cell)",
           lambda ctx: ctx.complete(A01, {"kd_step": wrapped(ctx.solution(A01, "kd_step"), "kd_step",
                                                             "import os; os._exit(0)")}),
           lost={KD_STEP: 0}, feedback={KD_STEP: "kernel died"}),
    Attack("crash-segfault-in-answer", A01,
           "combined_loss dereferences NULL (SIGSEGV): the kernel dies in its test cell, and again when the "
           "kd_step test's visible part calls it",
           lambda ctx: ctx.complete(A01, {"combined_loss": wrapped(ctx.solution(A01, "combined_loss"), "combined_loss",
                                                                   "import ctypes; ctypes.string_at(0)")}),
           lost={COMBINED: 0}, feedback={COMBINED: "kernel died"}),
    Attack("crash-exits-in-own-cells", A01,
           "right answers; cells of their own call sys.exit(3), exit(), os._exit(1) and dereference NULL",
           exits_in_cells),
    Attack("crash-loop-ignoring-interrupts-in-answer", A01,
           "softmax_with_temperature ignores SIGINT and sleeps forever",
           lambda ctx: ctx.complete(A01, {"softmax_with_temperature": wrapped(
               ctx.solution(A01, "softmax_with_temperature"), "softmax_with_temperature", IGNORE_INTERRUPTS)}),
           lost={SOFTMAX: 0}, feedback={SOFTMAX: "time limit"}),
    Attack("crash-loop-ignoring-interrupts-in-cell", A01,
           "right answers; a cell of its own ignores SIGINT and loops forever",
           lambda ctx: insert(ctx.complete(A01), code(IGNORE_INTERRUPTS), after=COMBINED)),
    Attack("03-crash-os-exit-in-train", A03, "train_with_mask calls os._exit(0)",
           lambda ctx: ctx.complete(A03, {"train_with_mask": wrapped(ctx.solution(A03, "train_with_mask"),
                                                                      "train_with_mask", "import os; os._exit(0)")}),
           lost={TRAIN: 0}),
]
