"""The stand-ins' oracle, called directly: where it is not offered, for the function under test, from test
cells moved up or from cells claiming a test's grade id, and with requests built to exhaust the grader."""

from adversarial.attack import (A01, A03, COMBINED, DISTILLATION, IMP, REMAINING, SOFTMAX, Attack, code, insert,
                                move_above, wrapped)

ASK = '''
import json
from compresslib.capture.stand_ins import ORACLE_PROMPT, ask_oracle, encode_argument, rebuild
from compresslib.capture.plain import from_input
'''

NOT_OFFERED = ASK + '''
def softmax_with_temperature(logits, temperature, dim=-1):
    """Ask the oracle for the answer of the function under test, in its own test cell (not offered)."""
    request = {"function": "softmax_with_temperature",
               "args": {"logits": encode_argument(logits), "temperature": temperature, "dim": dim}}
    try:
        reply = json.loads(input(ORACLE_PROMPT + json.dumps(request)))
    except Exception as error:
        print("UNAVAILABLE", type(error).__name__)
        raise
    return rebuild(reply, {"logits": logits})
'''

ORDINARY_CELL = ASK + '''
inputs = json.load(open(__import__("os").environ["COMPRESSLIB_GRADER_INPUTS"]))
case = inputs["test_distillation_loss"]["cases"][0]
reply = ask_oracle({"function": "distillation_loss",
                    "args": {k: case[k] for k in ("student_logits", "teacher_logits", "temperature")}})
print("ORDINARY-CELL-REPLY", sorted(reply))
'''

UNDER_TEST = ASK + '''
def combined_loss(student_logits, teacher_logits, labels, alpha, temperature):
    """In its own (dependent) test cell, ask for the answer of the function under test."""
    bound = dict(student_logits=student_logits, teacher_logits=teacher_logits, labels=labels, alpha=alpha,
                 temperature=temperature)
    reply = ask_oracle({"function": "combined_loss", "args": {k: encode_argument(v) for k, v in bound.items()}})
    print("UNDER-TEST-REPLY", sorted(reply))
    return rebuild(reply, bound)
'''

TABLE = ASK + '''
import os
HARVEST = []


def distillation_loss(student_logits, teacher_logits, temperature):
    """Not written: answers from a table of the oracle's replies, filled by a later function."""
    for case, reply in HARVEST:
        z, v = from_input(case["student_logits"]), from_input(case["teacher_logits"])
        if z.shape == student_logits.shape and torch.equal(z, student_logits.detach()) \\
                and torch.equal(v, teacher_logits) and case["temperature"] == temperature:
            return rebuild(reply, {"student_logits": student_logits, "teacher_logits": teacher_logits,
                                   "temperature": temperature})
    raise NotImplementedError("no harvested answer")
'''

HARVEST = '''
def harvest():
    """Ask the oracle for distillation_loss on each of that function's own hidden inputs."""
    if not HARVEST:
        inputs = json.load(open(os.environ["COMPRESSLIB_GRADER_INPUTS"]))
        for case in inputs["test_distillation_loss"]["cases"]:
            args = {k: case[k] for k in ("student_logits", "teacher_logits", "temperature")}
            HARVEST.append((case, ask_oracle({"function": "distillation_loss", "args": args})))
        print("HARVESTED", [sorted(reply) for _, reply in HARVEST])
'''

def reordered(ctx):
    """The combined-loss answer and test cells moved above the distillation test cell, combined_loss
    harvesting the oracle before doing its job."""
    harvesting = HARVEST + wrapped(ctx.solution(A01, "combined_loss"), "combined_loss", "harvest()")
    nb = ctx.complete(A01, {"distillation_loss": TABLE, "combined_loss": harvesting})
    return move_above(nb, ["combined_loss", COMBINED], DISTILLATION)


def fake_test_cell(ctx):
    """A cell of the student's own claiming test_combined_loss's grade id (a graded, locked test cell),
    placed before the distillation test: it harvests the oracle there."""
    nb = ctx.complete(A01, {"distillation_loss": TABLE + HARVEST})
    return insert(nb, code("harvest()", grade=True, locked=True, solution=False, points=2,
                           grade_id="test_combined_loss"), before=DISTILLATION)


def fake_test_cell_after(ctx):
    """Cells of the student's own claiming a test's grade id after the real test cell (a solution cell and a
    graded cell): each ends up as that test's only graded cell, its source restored."""
    nb = ctx.complete(A01)
    insert(nb, code("print('not the test')", grade=False, locked=False, solution=True,
                    grade_id="test_combined_loss"), after=COMBINED)
    return insert(nb, code("print('not the test either')", grade=True, locked=False, solution=False, points=20,
                           grade_id="test_kd_step"), after="test_kd_step")


BOMB = ASK + '''
import time


def distillation_loss(student_logits, teacher_logits, temperature):
    """Right, but first asks the oracle for a softmax Jacobian of 15,000 logits (dense: 225 million numbers)."""
    started = time.monotonic()
    big = {"tensor": [[0.5] * 15000], "dtype": "float32"}
    reply = ask_oracle({"function": "softmax_with_temperature", "args": {"logits": big, "temperature": 1.0, "dim": -1}})
    print("BOMB-REPLY", sorted(reply), round(time.monotonic() - started, 1))
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
'''

MALFORMED_REQUESTS = ASK + '''
def distillation_loss(student_logits, teacher_logits, temperature):
    """Right, but first sends the oracle requests nested too deep to parse or decode, and a huge one."""
    replies = [input(ORACLE_PROMPT + "[" * 200_000 + "]" * 200_000)]
    for depth in (450, 5_000):  # parses, then nests too deep to decode; too deep to parse
        deep = '{"mapping": {"x": ' * depth + '{"tensor": 1.0}' + "}}" * depth
        replies.append(input(ORACLE_PROMPT + '{"function": "softmax_with_temperature", "args": {"logits": '
                             + deep + ', "temperature": 1.0, "dim": -1}}'))
    replies.append(input(ORACLE_PROMPT + json.dumps({"function": "softmax_with_temperature",
                                                      "args": {"logits": {"tensor": [0.5] * 300_000},
                                                               "temperature": 1.0, "dim": -1}})))
    print("MALFORMED-REPLIES", [sorted(json.loads(r)) if r else None for r in replies])
    log_p = F.log_softmax(student_logits / temperature, dim=-1)
    q = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2
'''

TABLE_03 = ASK + '''
import os
HARVEST = []


def prune_remaining(weights, fraction, previous):
    """Not written: masks from a table of the oracle's replies, filled by a later function."""
    for case, reply in HARVEST:
        if "result" in reply and case["fraction"] == fraction \\
                and all(torch.equal(from_input(case["weights"])[n], w.detach()) for n, w in weights.items()):
            return from_input(reply["result"])
    raise NotImplementedError("no harvested answer")
'''

HARVEST_03 = '''
def harvest():
    """Ask the oracle for prune_remaining on each of that function's own hidden inputs."""
    if not HARVEST:
        inputs = json.load(open(os.environ["COMPRESSLIB_GRADER_INPUTS"]))
        for case in inputs["test_prune_remaining"]["cases"]:
            args = {k: case[k] for k in ("weights", "fraction", "previous")}
            HARVEST.append((case, ask_oracle({"function": "prune_remaining", "args": args})))
        print("HARVESTED", [sorted(reply) for _, reply in HARVEST])
'''


def reordered_03(ctx):
    harvesting = HARVEST_03 + wrapped(ctx.solution(A03, "imp_round"), "imp_round", "harvest()")
    nb = ctx.complete(A03, {"prune_remaining": TABLE_03, "imp_round": harvesting})
    return move_above(nb, ["imp_round", IMP], REMAINING)


def _in_ordinary_cell(ctx):
    nb = ctx.complete(A01, {"softmax_with_temperature": NOT_OFFERED})
    return insert(nb, code(ORDINARY_CELL), after=COMBINED)


ENTRIES = [
    Attack("oracle-where-not-offered", A01,
           "softmax_with_temperature asks the oracle (input() with its prompt) for its own answer in its own "
           "test cell, and an ordinary cell asks it for distillation_loss on that test's hidden inputs",
           _in_ordinary_cell,
           lost={SOFTMAX: 0}, present=("UNAVAILABLE StdinNotImplementedError",
                                       r"ORDINARY-CELL-REPLY \['unavailable'\]")),
    Attack("oracle-for-function-under-test", A01,
           "combined_loss asks the oracle for combined_loss itself in its own (dependent) test cell",
           lambda ctx: ctx.complete(A01, {"combined_loss": UNDER_TEST}),
           lost={COMBINED: 0}, present=(r"UNDER-TEST-REPLY \['unavailable'\]",)),
    Attack("oracle-reordered-test-cells", A01,
           "distillation_loss not written but looked up in a table; the combined-loss answer and test cells are "
           "moved above the distillation test, and combined_loss fills the table with the oracle's answers for "
           "distillation_loss on that test's hidden inputs (10/10 before the fix)",
           reordered,
           lost={DISTILLATION: 0, COMBINED: 0}, present=(r"HARVESTED \[\['unavailable'\]",)),
    Attack("oracle-fake-test-cell", A01,
           "the table-lookup distillation_loss, and a cell of the student's own carrying test_combined_loss's "
           "grade id and test metadata, above the distillation test, harvesting the oracle",
           fake_test_cell,
           lost={DISTILLATION: 0}, present=(r"HARVESTED \[\['unavailable'\]",)),
    Attack("oracle-fake-test-cells-after", A01,
           "right answers; cells claiming test_combined_loss's grade id (as a solution cell) and test_kd_step's "
           "(a graded cell worth 20 points) after the real test cells",
           fake_test_cell_after),
    Attack("oracle-jacobian-bomb", A01,
           "a right distillation_loss that first asks the oracle (in its own test cell, where the softmax "
           "stand-in is offered) for the softmax of 15,000 logits: a dense Jacobian of 225 million numbers "
           "computed by the trusted worker",
           lambda ctx: ctx.complete(A01, {"distillation_loss": BOMB}),
           present=(r"BOMB-REPLY \['unavailable'\]",)),
    Attack("oracle-malformed-requests", A01,
           "a right distillation_loss that first sends the oracle a request nested 200,000 deep, two whose "
           "arguments nest 450 and 5,000 mappings deep, and one of 300,000 numbers",
           lambda ctx: ctx.complete(A01, {"distillation_loss": MALFORMED_REQUESTS}),
           present=(r"MALFORMED-REPLIES \[\['unavailable'\], \['(raised|unavailable)'\], \['unavailable'\], \['unavailable'\]\]",)),
    Attack("03-oracle-reordered-test-cells", A03,
           "prune_remaining not written but looked up in a table; the imp_round answer and test cells moved above "
           "the prune_remaining test, imp_round filling the table from the oracle",
           reordered_03,
           lost={REMAINING: 0, IMP: 0}, present=(r"HARVESTED \[\['unavailable'\]",)),
]
