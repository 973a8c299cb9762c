"""Harmless habits that must cost nothing (warnings, stderr, a leftover input()), what must never reach a
browser (HTML and JavaScript in outputs and markdown), and a malicious pickle that must never run."""

from adversarial.attack import A01, SOFTMAX, Attack, code, insert, markdown, wrapped

WARN = '''
import sys, warnings
warnings.warn("this function is slow", RuntimeWarning)
print("debug: called", file=sys.stderr)
'''

SCRIPT = "<script>document.title = 'PWNED-{marker}'</script>"
IMAGE = "<img src=x onerror=\"document.title='PWNED-{marker}'\">"

ACTIVE_OUTPUTS = '''
from IPython.display import HTML, Javascript, SVG, display
display(HTML({script!r} + {image!r}))
display(Javascript("document.title = 'PWNED-{marker}'"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="document.title=\\'PWNED-{marker}\\'"></svg>'))
display({{"text/markdown": {script!r}, "text/plain": "plain text is fine"}}, raw=True)
print({script!r})
'''

PICKLE = '''
import os, pickle


class Payload:
    """Unpickling this runs code (it would create a file on whoever unpickles it)."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/PWNED-{marker}-unpickled",))


def softmax_with_temperature(logits, temperature, dim=-1):
    return Payload()


from IPython.display import display
display({{"application/octet-stream": pickle.dumps(Payload()).hex(), "application/x-pickle": "gASV",
          "text/plain": "a pickle"}}, raw=True)
'''


def with_warnings(ctx):
    overrides = {}
    for answer, function in (("softmax_with_temperature", "softmax_with_temperature"),
                             ("distillation_loss", "distillation_loss"), ("combined_loss", "combined_loss"),
                             ("kd_step", "kd_step")):
        overrides[answer] = wrapped(ctx.solution(A01, answer), function, WARN)
    return ctx.complete(A01, overrides)


def with_input(ctx):
    nb = ctx.complete(A01, {"distillation_loss": ctx.solution(A01, "distillation_loss")
                            + '\nanswer = input("did it work? ")\n'})
    return insert(nb, code('name = input("your name: ")\nprint("hello", name)'), top=True)


def active_content(ctx):
    script, image = SCRIPT.format(marker=ctx.marker), IMAGE.format(marker=ctx.marker)
    nb = insert(ctx.complete(A01), code(ACTIVE_OUTPUTS.format(script=script, image=image, marker=ctx.marker)),
                top=True)
    return insert(nb, markdown(f"My notes {script} {image} <iframe src='javascript:alert(1)'></iframe>"), top=True)


ENTRIES = [
    Attack("honest-warnings-and-stderr", A01,
           "right answers that each call warnings.warn and print to stderr on every call",
           with_warnings, present=("this function is slow",)),
    Attack("honest-leftover-input", A01,
           "right answers with leftover input() calls: in a cell of its own and after a function's definition",
           with_input),
    Attack("honest-html-and-javascript", A01,
           "right answers; outputs of HTML with <script> and onerror, Javascript, SVG with onload, markdown with "
           "a script, and a markdown cell with a script, an onerror image and a javascript: iframe",
           active_content, inert=(r"<script>document", r"<img[^>]*onerror", r"<svg[^>]*onload", r"<iframe")),
    Attack("honest-malicious-pickle", A01,
           "softmax_with_temperature returns an object whose __reduce__ runs a shell command, and a cell "
           "displays its pickle",
           lambda ctx: ctx.complete(A01, {"softmax_with_temperature": PICKLE.format(marker=ctx.marker)}),
           lost={SOFTMAX: 0}, feedback={SOFTMAX: "Payload"}),
]
