"""The grading sandbox (compresslib/grading/sandbox.py): what the student's code can see, reach and use.

Each test runs a short Python program inside a Sandbox (no kernel: that is tests/test_execute.py) and
checks its outcome on the inside and, on the host, that the course folder was neither read nor changed and
that nothing of the sandbox is left.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from compresslib.grading import sandbox as sandbox_module
from compresslib.grading.sandbox import (GRADER, INPUTS_VARIABLE, KIT, NOBODY, SCRATCH, Availability, Sandbox,
                                         SandboxError, SandboxLimits, availability, is_other_compresslib)
from hostile import CANARY, Course, LoopbackServer, make_kit, probe_reads, processes_with

needs_sandbox = pytest.mark.skipif(not availability(), reason=f"cannot sandbox here: {availability().reason}")


@pytest.fixture
def kit(tmp_path):
    return make_kit(tmp_path / "kit")


@pytest.fixture
def course(tmp_path):
    return Course(tmp_path / "course")


def run(kit, code: str, **kwargs) -> tuple[str, Sandbox]:
    """Run ``code`` in a fresh sandbox and close it; the output and the (closed) sandbox."""
    with Sandbox(kit, **kwargs) as box:
        done = box.run_python(code, timeout=60)
    return done.stdout, box


def last_json(output: str):
    return json.loads(output.strip().splitlines()[-1])


@needs_sandbox
def test_inside_runs_as_nobody_without_capabilities_in_its_own_namespaces(kit):
    """Does the code run as uid 65534 with no capabilities, in new PID, network, UTS and mount namespaces?"""
    output, box = run(kit, """
import json, os, socket
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                  "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
                  "no_new_privs": status["NoNewPrivs"].strip(), "pid": os.getpid(), "host": socket.gethostname(),
                  "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                  "interfaces": [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]],
                  "ns": {k: os.readlink(f"/proc/self/ns/{k}") for k in ("pid", "net", "mnt", "uts", "ipc", "user")}}))
""")
    inside = last_json(output)
    assert (inside["uid"], inside["gid"]) == (NOBODY, NOBODY) and set(inside["groups"]) <= {NOBODY}
    assert inside["caps"] == ["0000000000000000"] * 5 and inside["no_new_privs"] == "1"
    assert inside["pid"] <= 3 and len(inside["pids"]) <= 3, "only the sandbox's own processes are visible"
    assert inside["host"] == "sandbox" and inside["interfaces"] == ["lo"]
    for kind, link in inside["ns"].items():
        assert link != os.readlink(f"/proc/self/ns/{kind}"), f"{kind} namespace shared with the host"
    assert box.protections["user"].startswith(f"uid {NOBODY}")


@needs_sandbox
def test_kit_comes_first_and_no_other_compresslib_is_importable(kit):
    """Does ``import compresslib`` give the kit's copy, with the editable instructor install out of reach?"""
    output, _ = run(kit, """
import importlib.metadata, json, sys, compresslib
try:
    import compresslib.grading
    grading = compresslib.grading.__file__
except ImportError:
    grading = None
try:  # an installed copy's metadata is masked by an empty folder: nothing to read, no path to the repository
    found = importlib.metadata.distribution("compresslib")
    metadata = [found.read_text(name) for name in ("METADATA", "RECORD", "direct_url.json")]
except importlib.metadata.PackageNotFoundError:
    metadata = [None] * 3
print(json.dumps({"file": compresslib.__file__, "where": compresslib.WHERE, "grading": grading,
                  "metadata": metadata, "path": sys.path}))
""")
    inside = last_json(output)
    assert inside["file"] == f"{KIT}/compresslib/__init__.py" and inside["where"] == "stand-in kit"
    assert inside["grading"] is None, "the instructor's compresslib.grading leaked into the sandbox"
    assert inside["metadata"] == [None] * 3
    assert inside["path"][0] == KIT
    repository = str(Path(__file__).resolve().parents[1])
    assert not any(entry.startswith(repository) for entry in inside["path"])


@needs_sandbox
def test_environment_is_cleared_and_points_into_the_scratch(kit, monkeypatch):
    """Does nothing of the grader's environment reach the inside, and do HOME, TMPDIR and cwd lie in the scratch?"""
    monkeypatch.setenv("GRADER_SECRET", CANARY)
    output, _ = run(kit, "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))")
    inside = last_json(output)
    env = inside["env"]
    assert CANARY not in output and "GRADER_SECRET" not in env and "JPY_PARENT_PID" not in env
    assert env["HOME"] == env["TMPDIR"] == inside["cwd"] == SCRATCH
    assert env["PYTHONPATH"] == KIT and env["MPLBACKEND"] == "Agg" and env["COMPRESSLIB_PROFILE"] == "quick"
    assert env["HF_HUB_OFFLINE"] == "1" and env["OMP_NUM_THREADS"] == "1"
    assert env["IPYTHONDIR"].startswith(SCRATCH) and env["JUPYTER_CONFIG_DIR"].startswith(SCRATCH)
    assert "COMPRESSLIB_SANDBOX_BOOT" not in env


@needs_sandbox
def test_course_folder_is_neither_visible_nor_read(kit, course):
    """Can the code reach the gradebook, solutions, hidden tests or another student's submission? It must not
    find a single canary, by path or by searching everything it can see, and the host sees no access."""
    before = course.snapshot()
    with course.watch() as watch:
        output, _ = run(kit, probe_reads(course))
        events = watch.events()
    assert "FOUND 0 ERRORS ['FileNotFoundError'] MOUNTED False" in output, output
    assert CANARY not in output
    assert events == []
    assert course.snapshot() == before


@needs_sandbox
def test_writes_outside_the_scratch_fail_and_the_scratch_is_capped(kit, tmp_path):
    """Can the code write anywhere but its scratch, or fill the scratch or /dev/shm beyond the cap?"""
    inputs = tmp_path / "inputs.json"
    inputs.write_text('{"x": [1, 2, 3]}')
    inputs.chmod(0o644)
    kit_before = {p: p.read_bytes() for p in kit.rglob("*") if p.is_file()}
    output, _ = run(kit, f"""
import errno, json, os
results = {{}}
for path in ["{KIT}/compresslib/__init__.py", "{KIT}/new.py", "/usr/x", "/x", "/etc/passwd", "/opt/venv/x",
             "{GRADER}/boot.py", os.environ["{INPUTS_VARIABLE}"], "/dev/x", "/run/x", "/proc/x"]:
    try:
        with open(path, "a") as handle:
            handle.write("pwned")
        results[path] = "WROTE"
    except OSError as error:
        results[path] = errno.errorcode[error.errno]
def fill(path):
    try:
        with open(path, "wb") as handle:
            for _ in range(64):
                handle.write(b"x" * (1 << 20))
        return "FILLED"
    except OSError as error:
        return errno.errorcode[error.errno]
results["scratch"] = fill("{SCRATCH}/big")
os.remove("{SCRATCH}/big")
results["shm"] = fill("/dev/shm/big")
results["tmp_is_scratch"] = os.path.realpath("/tmp") == "{SCRATCH}"
print(json.dumps(results))
""", inputs=inputs, limits=SandboxLimits(scratch_bytes=16 << 20, file_bytes=128 << 20))
    results = last_json(output)
    assert results.pop("scratch") == results.pop("shm") == "ENOSPC"
    assert results.pop("tmp_is_scratch") is True
    assert "WROTE" not in results.values(), results
    assert {p: p.read_bytes() for p in kit.rglob("*") if p.is_file()} == kit_before
    assert inputs.read_text() == '{"x": [1, 2, 3]}'


@needs_sandbox
def test_inputs_file_is_bound_read_only_at_a_fixed_path(kit, tmp_path):
    """Is the grader's inputs file readable at /opt/grader/inputs<suffix>, named by $COMPRESSLIB_GRADER_INPUTS?"""
    inputs = tmp_path / "hidden.json"
    inputs.write_text('{"logits": [0.5, -1.0]}')
    inputs.chmod(0o644)
    code = f"import json, os; p = os.environ['{INPUTS_VARIABLE}']; print(json.dumps([p, open(p).read()]))"
    output, box = run(kit, code, inputs=inputs)
    assert last_json(output) == [f"{GRADER}/inputs.json", '{"logits": [0.5, -1.0]}']
    assert box.inputs_inside == f"{GRADER}/inputs.json"


@needs_sandbox
def test_network_is_unreachable(kit):
    """Can the code connect to a server on the host's loopback, or to a public address, or resolve a name?"""
    with LoopbackServer() as server:
        output, _ = run(kit, f"""
import errno, json, socket
results = {{}}
for name, address in {{"host_loopback": ("127.0.0.1", {server.port}), "public": ("1.1.1.1", 53)}}.items():
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(address)
        results[name] = "CONNECTED"
    except OSError as error:
        results[name] = errno.errorcode.get(error.errno, str(error))
try:
    socket.getaddrinfo("pypi.org", 443)
    results["dns"] = "RESOLVED"
except OSError:
    results["dns"] = "failed"
print(json.dumps(results))
""")
        assert server.connections == 0
    assert last_json(output) == {"host_loopback": "ECONNREFUSED", "public": "ENETUNREACH", "dns": "failed"}


@needs_sandbox
def test_limits_are_in_effect_inside(kit):
    """Are the rlimits set as the policy says (RLIMIT_NPROC inside the sandbox's user namespace)?"""
    limits = SandboxLimits(memory_bytes=3 << 30, cpu_seconds=100, processes=64, file_bytes=8 << 20, open_files=128)
    output, box = run(kit, """
import json, resource
print(json.dumps({n: resource.getrlimit(getattr(resource, n)) for n in
                  ("RLIMIT_DATA", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE")}))
""", limits=limits)
    assert last_json(output) == {"RLIMIT_DATA": [3 << 30] * 2, "RLIMIT_CPU": [100, 105], "RLIMIT_NPROC": [64, 64],
                                 "RLIMIT_FSIZE": [8 << 20] * 2, "RLIMIT_NOFILE": [128, 128], "RLIMIT_CORE": [0, 0]}
    assert "RLIMIT_NPROC 64" in box.protections["processes"]


@needs_sandbox
def test_fork_bomb_is_bounded_and_nothing_survives(kit):
    """Does a fork bomb stop at the process limit, and is every process gone, with the scratch, after close()?"""
    marker = "987651"
    box = Sandbox(kit, limits=SandboxLimits(processes=40))
    try:
        done = box.run_python(f"""
import os
count = 0
try:
    while True:
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", "{marker}"])
        count += 1
except OSError as error:
    print("STOPPED", count, error.errno)
""")
        namespaces = dict(box.namespaces)
    finally:
        box.close()
    stopped = [line for line in done.stdout.splitlines() if line.startswith("STOPPED")]
    assert stopped, done.stdout
    assert 0 < int(stopped[0].split()[1]) < 40
    assert processes_with(f"sleep {marker}") == []
    assert box.survivors() == []
    assert sandbox_module.pids_in_namespace("mnt", namespaces["mnt-namespace"]) == [], "the scratch's mount lives on"
    assert not box.host_dir.exists()


@needs_sandbox
def test_process_limit_counts_each_sandbox_apart(kit):
    """With one sandbox at its process limit, can another (same uid 65534, as a second grading worker) still
    start processes?"""
    bomb = """
import os, sys, time
count = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        count += 1
except OSError:
    print("FULL", count, flush=True)
time.sleep(30)
"""
    limits = SandboxLimits(processes=32)
    with Sandbox(kit, limits=limits) as full:
        full.spawn(["-c", bomb])
        deadline = time.monotonic() + 30
        while "FULL" not in full.log_tail() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "FULL" in full.log_tail()
        output, _ = run(kit, "import os\ncount = 0\nfor _ in range(8):\n    if os.fork() == 0:\n        os._exit(0)\n"
                             "    count += 1\nprint('FORKED', count)", limits=limits)
    assert "FORKED 8" in output


@needs_sandbox
def test_background_daemon_does_not_survive(kit):
    """Does a double-forked daemon in a new session outlive the sandbox?"""
    marker = "987652"
    with Sandbox(kit) as box:
        box.run_python(f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
time.sleep(0.5)
print("LEFT", os.popen("ps -eo args").read().splitlines().count("sleep {marker}"))
""")
        assert "LEFT 1" in box.log_tail(), box.log_tail()
    assert processes_with(f"sleep {marker}") == []
    assert box.survivors() == []


@needs_sandbox
def test_memory_is_limited_per_process_and_for_the_whole_sandbox(kit):
    """Does a big allocation fail cleanly (RLIMIT_DATA), and do children that together exceed the limit meet the
    cgroup's out-of-memory killer rather than the host's?"""
    limits = SandboxLimits(memory_bytes=256 << 20)
    output, _ = run(kit, """
try:
    block = bytearray(1 << 30)
    print("ALLOCATED")
except MemoryError:
    print("MEMORYERROR")
""", limits=limits)
    assert "MEMORYERROR" in output
    box = Sandbox(kit, limits=limits)
    if "memory" not in box.cgroups.dirs:
        box.close()
        pytest.skip("no writable memory cgroup here: the per-process rlimit is the only memory bound")
    try:
        done = box.run_python("""
import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (150 << 20)
        time.sleep(2)
        os._exit(0)
    children.append(pid)
codes = [os.waitpid(pid, 0)[1] for pid in children]
print("KILLED", sum(os.WIFSIGNALED(c) and os.WTERMSIG(c) == 9 for c in codes))
""")
        peak = int((box.cgroups.dirs["memory"] / "memory.max_usage_in_bytes").read_text())
        oom = box.cgroups.oom_kills()
    finally:
        box.close()
    assert peak <= limits.memory_bytes
    assert oom >= 1
    killed = [line for line in done.stdout.splitlines() if line.startswith("KILLED")]
    assert (killed and int(killed[0].split()[1]) >= 1) or "out-of-memory" in box.exit_reason()


@needs_sandbox
def test_cpu_file_size_and_open_file_limits(kit):
    """Do the CPU time, file size and open-file limits stop the code, with a reason the report can show?"""
    with Sandbox(kit, limits=SandboxLimits(cpu_seconds=1)) as box:
        box.run_python("while True: pass", timeout=30)
        assert box.exit_reason() == "CPU time limit reached (1 s)"
    output, _ = run(kit, f"""
import errno
try:
    with open("{SCRATCH}/big", "wb") as handle:
        handle.write(b"x" * (5 << 20))
    print("WROTE")
except OSError as error:
    print("FILE", errno.errorcode[error.errno])
handles = []
try:
    for _ in range(1000):
        handles.append(open("/dev/null"))
except OSError as error:
    print("OPEN", errno.errorcode[error.errno], len(handles) < 64)
""", limits=SandboxLimits(file_bytes=1 << 20, open_files=64))
    assert "FILE EFBIG" in output and "OPEN EMFILE True" in output


def test_installed_or_editable_compresslib_entries_are_recognised(tmp_path):
    """Which site-packages entries would make another compresslib importable (and are masked)?"""
    site = tmp_path / "site-packages"
    (tmp_path / "repo" / "compresslib").mkdir(parents=True)
    site.mkdir()
    masked = {"compresslib": "dir", "compresslib-0.1.0.dist-info": "dir", "__editable__.compresslib-0.1.0.pth": "",
              "__editable___compresslib_0_1_0_finder.py": "", "compresslib.egg-link": "",
              "easy-install.pth": f"{tmp_path / 'repo'}\n", "hook.pth": "import compresslib_hook\n"}
    kept = {"compresslibx": "dir", "torch": "dir", "distutils-precedence.pth": "import os; var = 'X'\n",
            "other.pth": f"{tmp_path}\n", "compresslib_notes.txt": ""}
    for name, content in {**masked, **kept}.items():
        if content == "dir":
            (site / name).mkdir()
        else:
            (site / name).write_text(content)
    assert {p.name for p in site.iterdir() if is_other_compresslib(p)} == set(masked) - {"compresslib_notes.txt"}


def test_limits_reject_bad_values():
    """Do impossible limits fail before anything starts, naming the field?"""
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxLimits(memory_bytes=0)
    with pytest.raises(ValueError, match="processes must be at least 16"):
        SandboxLimits(processes=4)
    with pytest.raises(ValueError, match="threads"):
        SandboxLimits(threads=1.5)


def test_a_kit_without_compresslib_is_refused(tmp_path):
    with pytest.raises(SandboxError, match="no compresslib/__init__.py"):
        Sandbox(tmp_path)


def test_without_a_sandbox_it_refuses_unless_told_and_says_why(monkeypatch, kit):
    """Without bubblewrap, does building a sandbox fail with the reason and the way out?"""
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    availability.cache_clear()
    try:
        found = availability()
        assert isinstance(found, Availability) and not found and "apt-get install -y bubblewrap" in found.reason
        with pytest.raises(SandboxError, match="unsandboxed=True"):
            Sandbox(kit)
    finally:
        availability.cache_clear()


def test_unsandboxed_runs_plainly_and_says_loudly_what_is_not_protected(kit, caplog, monkeypatch):
    """With unsandboxed=True: kit first, cleared environment, rlimits, and a warning naming each gap."""
    monkeypatch.setenv("GRADER_SECRET", CANARY)
    with caplog.at_level(logging.WARNING, logger="compresslib.grading.sandbox"):
        output, box = run(kit, """
import json, os, resource, compresslib
try:
    import compresslib.grading
    grading = True
except ImportError:
    grading = False
print(json.dumps({"file": compresslib.__file__, "grading": grading, "env": sorted(os.environ),
                  "data": resource.getrlimit(resource.RLIMIT_DATA)[0]}))
""", unsandboxed=True)
    inside = last_json(output)
    assert inside["file"] == str(kit.resolve() / "compresslib" / "__init__.py")
    assert inside["grading"] is False, "the editable instructor install must not be importable even unsandboxed"
    assert "GRADER_SECRET" not in inside["env"] and inside["data"] == SandboxLimits().memory_bytes
    warning = " ".join(r.getMessage() for r in caplog.records)
    for gap in ("UNSANDBOXED", "network", "filesystem", "namespaces"):
        assert gap in warning
    assert not box.protections["network"].startswith("own")
    assert any(text.startswith("network") for text in box.unprotected)
    if os.geteuid() == 0 and "pids" not in box.cgroups.dirs:
        assert any(text.startswith("processes") for text in box.unprotected)
