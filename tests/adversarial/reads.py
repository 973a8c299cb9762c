"""Reading what a student must not see: the course folder (gradebook, solutions, fixtures, another
student's submission, planted canaries), the instructor's library, the host's processes; and the hidden
inputs, which a kernel may read but which hold no answer."""

from adversarial.attack import A01, DISTILLATION, SOFTMAX, Attack, code, insert

FIXTURE_ANSWER = '''
import glob, json, os

def _expected_values():
    """Look for the fixture with the hidden tests' expected values wherever it could be."""
    import sys
    patterns = ["/opt/kit/compresslib/grading/fixtures/*.json", "{root}/compresslib/grading/fixtures/*.json",
                "/work/*/compresslib/grading/fixtures/*.json", "/root/*/compresslib/grading/fixtures/*.json",
                *[entry + "/**/fixtures/01_soft_targets.json" for entry in sys.path if entry.startswith("/opt/kit")]]
    for pattern in patterns:
        for path in glob.glob(pattern, recursive=True):
            try:
                return json.load(open(path))
            except (OSError, ValueError):
                pass
    try:
        from compresslib.grading.fixtures import load_fixture
        return load_fixture("01_soft_targets")
    except ImportError as error:
        print("NO-GRADING-PACKAGE", error)
    return None

FIXTURE = _expected_values()
print("FIXTURE-FOUND", FIXTURE is not None)

def distillation_loss(student_logits, teacher_logits, temperature):
    for case in (FIXTURE or {{}}).get("tests", {{}}).get("test_distillation_loss", {{}}).get("cases", []):
        if case["inputs"]["temperature"] == temperature:
            return torch.tensor(case["expected"]["value"])
    raise NotImplementedError("no fixture to copy from")
'''

HIDDEN_INPUTS = '''
import json, os

def softmax_with_temperature(logits, temperature, dim=-1):
    """Return what the hidden inputs file holds for these logits (it holds inputs only)."""
    inputs = json.load(open(os.environ["COMPRESSLIB_GRADER_INPUTS"]))
    print("INPUT-TESTS", sorted(inputs))
    for case in inputs["test_softmax_with_temperature"]["cases"]:
        for key, value in case.items():
            if isinstance(value, dict) and "tensor" in value:
                candidate = torch.tensor(value["tensor"], dtype=logits.dtype)
                if candidate.shape == logits.shape and not torch.equal(candidate, logits):
                    return candidate
    return torch.full_like(logits, 1.0 / logits.shape[dim])
'''

PROCESS_SNOOP = '''
import glob, os
seen = []
for path in glob.glob("/proc/[0-9]*/cmdline") + glob.glob("/proc/[0-9]*/environ"):
    try:
        seen.append(open(path, "rb").read().replace(b"\\0", b" ").decode(errors="replace"))
    except OSError:
        pass
text = " ".join(seen) + " ".join(f"{{k}}={{v}}" for k, v in os.environ.items())
print("PROCESSES", len(glob.glob("/proc/[0-9]*")), "SEES-COURSE", {root!r} in text, "SEES-GRADEBOOK", "gradebook" in text)
'''

ENTRIES = [
    Attack("reads-course-canaries", A01,
           "an added cell reads the planted canaries by their host paths (course root, solutions/, another "
           "student's submitted folder, the course's fixtures) and searches every file it can see for the canary",
           lambda ctx: insert(ctx.complete(A01), code(ctx.probe_reads()), top=True),
           present=(r"FOUND 0 ERRORS \['FileNotFoundError'\]",),
           unprotected="Not the contents, but the host paths of what is bound into the sandbox (the grading kit "
                       "under the course's build/ folder, the Python environment, the inputs file) are visible in "
                       "/proc/self/mountinfo: a submission learns where the course and the environment live."),
    Attack("reads-fixture-to-answer", A01,
           "distillation_loss looks for the grading fixture (expected values) in the kit, the course, /work, "
           "the whole filesystem and compresslib.grading, and returns the recorded expected value",
           lambda ctx: ctx.complete(A01, {"distillation_loss": FIXTURE_ANSWER.format(root=ctx.root)}),
           lost={DISTILLATION: 0}, present=("FIXTURE-FOUND False", "NO-GRADING-PACKAGE")),
    Attack("reads-hidden-inputs", A01,
           "softmax_with_temperature returns a tensor read from the hidden inputs file (readable by design: "
           "it holds the hidden tests' inputs and no expected value)",
           lambda ctx: ctx.complete(A01, {"softmax_with_temperature": HIDDEN_INPUTS}),
           lost={SOFTMAX: 0}, present=("INPUT-TESTS",)),
    Attack("reads-processes", A01,
           "an added cell reads every visible process's command line and environment (the grader's, the "
           "instructor's) looking for the course folder or the gradebook",
           lambda ctx: insert(ctx.complete(A01), code(PROCESS_SNOOP.format(root=str(ctx.root))), top=True),
           present=("SEES-COURSE False SEES-GRADEBOOK False",)),
]
