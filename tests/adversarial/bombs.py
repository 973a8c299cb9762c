"""Resource bombs and the network: memory (one process and many), processes, output, one huge message,
and connections to the host and beyond. Each costs at most its own cell."""

from adversarial.attack import A01, COMBINED, DISTILLATION, SOFTMAX, Attack, code, insert, wrapped

MEMORY_PROCESSES = '''
import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        chunks = []
        try:
            while True:
                chunks.append(bytearray(64 << 20))  # touched: really resident
        finally:
            os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("MEMORY-CHILDREN-ENDED", len(children))
'''

FORK_BOMB = '''
import os
count = 0
try:
    while True:
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", "{marker}-fork"])
        count += 1
except OSError as error:
    print("FORK-STOPPED", count, type(error).__name__)
'''

OUTPUT_BOMB = '''
for _ in range(50):
    print("x" * 1_000_000)
print("OUTPUT-BOMB-DONE")
'''

BIG_DISPLAY = '''
from IPython.display import display
display({"text/plain": "y" * 6_000_000}, raw=True)
display({"application/json": {"k": "z" * 6_000_000}}, raw=True)
print("BIG-DISPLAY-SENT")
'''

NETWORK = '''
import socket, urllib.request
for address in [("127.0.0.1", {port}), ("10.0.2.2", 80), ("1.1.1.1", 443), ("pypi.org", 443)]:
    try:
        socket.create_connection(address, timeout=3).close()
        print("CONNECTED", address)
    except OSError as error:
        print("NO-CONNECTION", address[0], type(error).__name__)
try:
    urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=3)
    print("CONNECTED http")
except OSError as error:
    print("NO-CONNECTION http", type(error).__name__)
'''

ENTRIES = [
    Attack("bomb-memory-in-answer", A01, "distillation_loss first allocates a 1 TB tensor",
           lambda ctx: ctx.complete(A01, {"distillation_loss": wrapped(
               ctx.solution(A01, "distillation_loss"), "distillation_loss", "torch.empty(2**40, dtype=torch.uint8)")}),
           lost={DISTILLATION: 0}, feedback={DISTILLATION: "allocate|memory"}),
    Attack("bomb-memory-processes", A01,
           "right answers; a cell of its own forks 4 processes that each allocate memory until stopped",
           lambda ctx: insert(ctx.complete(A01), code(MEMORY_PROCESSES), after=SOFTMAX)),
    Attack("bomb-fork", A01, "right answers; a cell of its own forks sleeping processes until it cannot",
           lambda ctx: insert(ctx.complete(A01), code(FORK_BOMB.format(marker=ctx.marker)), after=COMBINED),
           present=("FORK-STOPPED",)),
    Attack("bomb-output", A01,
           "right answers; a cell of its own prints 50 MB, and kd_step prints 2 MB on each call (in its test cell)",
           lambda ctx: insert(ctx.complete(A01, {"kd_step": wrapped(ctx.solution(A01, "kd_step"), "kd_step",
                                                                    "print('k' * 2_000_000)")}),
                              code(OUTPUT_BOMB), top=True),
           present=("bytes of output dropped",)),
    Attack("bomb-big-display", A01,
           "right answers; a cell of its own displays two 6 MB outputs (each one message over the grader's size limit)",
           lambda ctx: insert(ctx.complete(A01), code(BIG_DISPLAY), after=SOFTMAX),
           present=("BIG-DISPLAY-SENT",)),
    Attack("network-connections", A01,
           "right answers; a cell of its own connects to a server on the host's loopback, the host's gateway, "
           "a public address and a hostname",
           lambda ctx: insert(ctx.complete(A01), code(NETWORK.format(port=ctx.port)), top=True),
           present=("NO-CONNECTION 127.0.0.1 ConnectionRefusedError", "NO-CONNECTION http"),
           absent=("CONNECTED",)),
    Attack("bomb-kd-step-output-and-time", A01,
           "kd_step prints 2 MB of stderr per call and sleeps 1 s: slow and noisy but right",
           lambda ctx: ctx.complete(A01, {"kd_step": wrapped(ctx.solution(A01, "kd_step"), "kd_step",
                                                             "import sys, time\nprint('e' * 2_000_000, file=sys.stderr)\n"
                                                             "time.sleep(1)")})),
]
