"""Leaving something behind for the next submission: files (IPython startup files, sitecustomize, the
scratch, /tmp, /dev/shm, the kernel's runtime folder, the kit, the environment, the course) and a
detached process. The attackers' names sort first; ``zz-victim-complete`` is graded after them all and
must keep full marks (and every later submission of the batch is a victim too)."""

from adversarial.attack import A01, Attack, code, insert

SABOTAGE = '''
# what every planted file does if it ever runs: wreck the softmax of whoever runs it, and say so
import torch
torch.softmax = lambda *args, **kwargs: torch.zeros(1)
print("PLANTED-CODE-RAN")
'''

PLANT_FILES = '''
import os, site, sys
sabotage = {sabotage!r}
targets = [
    os.path.expanduser("~/.ipython/profile_default/startup/00-planted.py"),
    os.path.expanduser("~/.ipython/profile_default/ipython_config.py"),
    os.path.expanduser("~/.jupyter/jupyter_config.py"),
    os.path.expanduser("~/.local/lib/python%d.%d/site-packages/sitecustomize.py" % sys.version_info[:2]),
    "/tmp/planted.py", "/dev/shm/planted.py", "/run/kernel/planted.py", "/run/kernel/connection.json",
    "/opt/kit/compresslib/__init__.py", "/opt/kit/sitecustomize.py", "/opt/grader/boot.py",
    "/opt/venv/lib/python%d.%d/site-packages/planted.pth" % sys.version_info[:2],
    *[os.path.join(p, "usercustomize.py") for p in site.getsitepackages()],
    "/etc/planted.py", "/usr/lib/planted.py", "/var/tmp/planted.py",
    {course!r} + "/planted.py", {course!r} + "/gradebook.db", {course!r} + "/submitted/zz-victim-complete/planted.py",
]
wrote = []
for path in targets:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a") as handle:
            handle.write(sabotage)
        wrote.append(path)
    except OSError as error:
        pass
print("WROTE-ONLY", sorted(wrote))
'''

PLANT_PROCESS = '''
import os, signal, subprocess, sys, time
script = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.setsid()
while True:
    for path in ("/tmp/from-the-past", "/run/kernel/from-the-past", "/home/student/from-the-past"):
        try:
            open(path, "w").write("x")
        except OSError:
            pass
    time.sleep(0.2)
"""
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", script, "{marker}-daemon"])
    os._exit(0)
subprocess.Popen(["sleep", "{marker}-sleeper"], start_new_session=True)
time.sleep(0.5)
print("DAEMONS-STARTED")
'''

PROBE_LEFTOVERS = '''
import glob, os
found = [p for p in ["/tmp/planted.py", "/dev/shm/planted.py", "/tmp/from-the-past", "/run/kernel/planted.py",
                     os.path.expanduser("~/.ipython/profile_default/startup/00-planted.py")] if os.path.exists(p)]
processes = [open(f).read() for f in glob.glob("/proc/[0-9]*/cmdline") if "{marker}" in open(f).read()]
print("LEFTOVERS-SEEN", found, len(processes))
'''

ENTRIES = [
    Attack("a-leftover-files", A01,
           "right answers; a cell of its own writes code that would wreck the softmax into IPython startup "
           "files, IPython/Jupyter config, sitecustomize/usercustomize, /tmp, /dev/shm, the kernel's runtime "
           "folder, the kit, the boot script, the environment, /etc, /usr, and the course folder",
           lambda ctx: insert(ctx.complete(A01), code(PLANT_FILES.format(sabotage=SABOTAGE, course=str(ctx.root))),
                              top=True),
           # every write that succeeded landed in this sandbox's own scratch (/tmp is a link to it) or /dev/shm
           present=(r"WROTE-ONLY \['/dev/shm/planted\.py', '/home/student/\.ipython/profile_default/ipython_config\.py'"
                    r"(, '(/home/student|/tmp)/[^']*')*\]",),
           absent=("PLANTED-CODE-RAN",)),
    Attack("a-leftover-processes", A01,
           "right answers; a cell of its own starts a double-forked daemon in its own session, ignoring SIGTERM "
           "and SIGHUP, that keeps writing files, and a detached sleep",
           lambda ctx: insert(ctx.complete(A01), code(PLANT_PROCESS.format(marker=ctx.marker)), top=True),
           present=("DAEMONS-STARTED",)),
    Attack("zz-victim-complete", A01,
           "the complete solution, graded after the attackers; it also looks for what they left",
           lambda ctx: insert(ctx.complete(A01), code(PROBE_LEFTOVERS.format(marker=ctx.marker)), top=True),
           present=(r"LEFTOVERS-SEEN \[\] 0",), absent=("PLANTED-CODE-RAN",)),
]
