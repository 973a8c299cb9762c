"""A bubblewrap sandbox for running a student's code, with limits, and proof that nothing is left behind.

One :class:`Sandbox` is one sandboxed process tree: build it, :meth:`Sandbox.spawn` a Python module in
it (the executor spawns ``ipykernel_launcher``), :meth:`Sandbox.close` it. Inside, the process sees:

=====================  ==============================================================================
``/opt/kit``           the student kit, read-only, first on ``PYTHONPATH`` (:data:`KIT`)
``/opt/venv``          the environment that runs the kernel: its site-packages, read-only, without
                       any installed or editable ``compresslib`` (:data:`VENV`)
base prefix            the base Python installation, read-only, at its own path
``/opt/grader``        the boot script, and the optional inputs file named by ``$COMPRESSLIB_GRADER_INPUTS``
``/run/kernel``        a folder shared with the host for the kernel's IPC sockets (:data:`RUNTIME`)
``/home/student``      the scratch: an empty tmpfs with a size cap; HOME, TMPDIR, the working
                       directory, and where ``/tmp`` points (:data:`SCRATCH`)
``/usr`` ``/bin`` ...  the system, read-only; from ``/etc`` only the loader cache, the time zone,
                       ``alternatives`` and a generated ``passwd``/``group``/``hosts``
``/proc`` ``/dev``     its own PID namespace's procfs; a minimal /dev, read-only, with a capped /dev/shm
=====================  ==============================================================================

Nothing else of the host is visible: not the course directory, the gradebook, ``solutions/``, the
instructor's ``compresslib`` or other students' folders. The process runs in new user, mount, PID, IPC,
UTS, network and cgroup namespaces, in a new session, as uid 65534 with no capabilities, and dies with
its parent. When the grader runs as root, it drops to uid 65534 *before* starting bubblewrap (the kernel
does not enforce RLIMIT_NPROC on real uid 0); host paths that uid 65534 cannot reach (``/root/.pyenv``,
a 0700 temporary folder) are first bind-mounted, as root, into a private mount namespace of the
launching process, under a folder it can reach.

Limits (:class:`SandboxLimits`), chosen by measurement (``bench/bench_sandbox.py``): at the end of notebook
01 the kernel has 1.4 GB of address space (VmPeak) for 0.44 GB of data (VmData) and 0.40 GB resident, so
RLIMIT_AS would count libraries and reserved arenas three times over; RLIMIT_DATA counts what a memory bomb
grows, and makes ``torch.empty(huge)`` or ``bytearray(huge)`` fail with an error in its cell while the
kernel lives on. A bomb spread over processes multiplies any per-process limit, so the cgroup v1 memory
controller (where writable) bounds the sandbox as a whole, tmpfs pages included, with the out-of-memory
killer. Processes and threads: the pids controller where writable, plus RLIMIT_NPROC set inside the
sandbox's user namespace, so that it counts this sandbox's tasks only (the kernel has 11 threads at the
end of notebook 01). CPU time, file size and open files: rlimits; the scratch and /dev/shm: tmpfs size
caps. :attr:`Sandbox.protections` says which are in effect here.

Without bubblewrap or user namespaces (:func:`availability`), a sandbox is only built with
``unsandboxed=True``: the process then runs plainly (kit first on the path, cleared environment, the
rlimits and cgroups that can be applied) and a loud warning names what is not protected.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NOBODY = 65534
KIT = "/opt/kit"
GRADER = "/opt/grader"
BOOT = f"{GRADER}/boot.py"
VENV = "/opt/venv"
RUNTIME = "/run/kernel"
SCRATCH = "/home/student"
INPUTS_VARIABLE = "COMPRESSLIB_GRADER_INPUTS"
BOOT_VARIABLE = "COMPRESSLIB_SANDBOX_BOOT"
BOOT_SOURCE = Path(__file__).with_name("sandbox_boot.py")
PACKAGE = "compresslib"

_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 1 << 18
_GIB = 1 << 30
_MIB = 1 << 20


class SandboxError(RuntimeError):
    """The sandbox could not be built or started; the message says why."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandbox may use. Sizes in bytes, times in seconds.

    ``processes`` counts tasks (processes and threads) of the sandbox: an IPython kernel (ipykernel 7) has
    11 threads, idle, after importing torch, and at the end of notebook 01 (``bench/bench_sandbox.py``). ``threads`` sets OMP/MKL/OpenBLAS and
    torch's intra-op thread count. ``memory_bytes`` bounds each process's data (RLIMIT_DATA) and, where the
    memory cgroup is writable, the whole sandbox.
    """

    memory_bytes: int = 4 * _GIB
    cpu_seconds: int = 1800
    processes: int = 128
    file_bytes: int = 64 * _MIB
    open_files: int = 256
    scratch_bytes: int = 256 * _MIB
    threads: int = 1

    def __post_init__(self):
        for name in ("memory_bytes", "cpu_seconds", "processes", "file_bytes", "open_files", "scratch_bytes",
                     "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive integer, got {value!r}")
        if self.processes < 16:
            raise ValueError(f"SandboxLimits.processes must be at least 16 (a kernel has about 11 threads), "
                             f"got {self.processes}")

    def rlimits(self, *, nproc: bool) -> dict[str, tuple[int, int]]:
        """The (soft, hard) rlimits of the sandboxed process, by ``resource`` name. The CPU limit's hard value
        is 5 s above the soft one: SIGXCPU first (which ends Python), SIGKILL if that is ignored."""
        limits = {"RLIMIT_CORE": (0, 0), "RLIMIT_CPU": (self.cpu_seconds, self.cpu_seconds + 5),
                  "RLIMIT_DATA": (self.memory_bytes,) * 2, "RLIMIT_FSIZE": (self.file_bytes,) * 2,
                  "RLIMIT_NOFILE": (self.open_files,) * 2}
        if nproc:
            limits["RLIMIT_NPROC"] = (self.processes,) * 2
        return limits


@dataclass(frozen=True)
class Availability:
    """Whether this machine can sandbox (bubblewrap and user namespaces work), and why not."""

    ok: bool
    reason: str

    def __bool__(self):
        return self.ok


@dataclass(frozen=True)
class PythonEnvironment:
    """Where an interpreter's files are: what must be bound into the sandbox for it to run there."""

    path: str  # as given (a venv's bin/python), what runs unsandboxed
    executable: str  # the interpreter binary it resolves to
    version: str
    prefix: str
    base_prefix: str
    site_packages: tuple[str, ...]
    system_site_packages: bool

    @property
    def is_venv(self) -> bool:
        return self.prefix != self.base_prefix

    @property
    def interpreter_inside(self) -> str:
        return f"{VENV}/bin/python" if self.is_venv else self.executable


_DESCRIBE = ("import json, os, site, sys; print(json.dumps({'executable': os.path.realpath(sys.executable), "
             "'version': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix, 'base_prefix': sys.base_prefix, "
             "'site_packages': [p for p in site.getsitepackages() if os.path.isdir(p)]}))")


@functools.cache
def describe_python(python: str) -> PythonEnvironment:
    """The :class:`PythonEnvironment` of the interpreter ``python`` (a path)."""
    if not os.path.exists(python):
        raise SandboxError(f"python interpreter {python!r} does not exist")
    found = subprocess.run([python, "-I", "-c", _DESCRIBE], capture_output=True, text=True, timeout=60)
    if found.returncode:
        raise SandboxError(f"cannot inspect {python}: {found.stderr.strip()[-500:]}")
    info = json.loads(found.stdout)
    config = Path(info["prefix"]) / "pyvenv.cfg"
    system = config.exists() and bool(re.search(r"^include-system-site-packages\s*=\s*true", config.read_text(),
                                                re.M | re.I))
    site_dirs = tuple(dict.fromkeys(os.path.realpath(p) for p in info["site_packages"]))
    return PythonEnvironment(python, info["executable"], info["version"], info["prefix"], info["base_prefix"],
                             site_dirs, system)


def is_other_compresslib(path: Path) -> bool:
    """Whether a site-packages entry installs or points to a ``compresslib`` (which must not be visible)."""
    if re.match(r"__editable__[._]+compresslib[._-]|compresslib([.-]|$)", path.name.lower()):
        return True
    if path.suffix in (".pth", ".egg-link") and path.is_file():
        try:
            lines = path.read_text(errors="replace").splitlines()[:1000]
        except OSError:
            return False
        for line in lines:
            line = line.strip()
            if line.startswith("import") and PACKAGE in line:
                return True
            if line and not line.startswith(("#", "import")) and (Path(line) / PACKAGE).is_dir():
                return True
    return False


def _masked_entries(site_dir: str) -> list[Path]:
    try:
        return sorted(p for p in Path(site_dir).iterdir() if is_other_compresslib(p))
    except OSError:
        return []


class _Cgroups:
    """Per-sandbox cgroup v1 memory and pids groups, where this process may create them."""

    CONTROLLERS = ("memory", "pids")

    def __init__(self, name: str, limits: SandboxLimits):
        self.dirs: dict[str, Path] = {}
        self.problems: list[str] = []
        for controller in self.CONTROLLERS:
            try:
                folder = self._own_group(controller) / name
                folder.mkdir()
            except (OSError, LookupError) as error:
                self.problems.append(f"{controller}: {error}")
                continue
            self.dirs[controller] = folder
            try:
                if controller == "memory":
                    (folder / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                    swap = folder / "memory.memsw.limit_in_bytes"
                    if swap.exists():
                        swap.write_text(str(limits.memory_bytes))
                else:
                    (folder / "pids.max").write_text(str(limits.processes))
            except OSError as error:
                self.problems.append(f"{controller}: cannot set the limit: {error}")
                self._remove(controller)

    @staticmethod
    def _own_group(controller: str) -> Path:
        root = Path("/sys/fs/cgroup") / controller
        if not (root / "cgroup.procs").exists():
            raise LookupError(f"no cgroup v1 {controller} hierarchy at {root}")
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return root / path.lstrip("/")
        raise LookupError(f"this process is in no {controller} cgroup")

    def procs_files(self) -> list[str]:
        return [str(folder / "cgroup.procs") for folder in self.dirs.values()]

    def pids(self) -> set[int]:
        found = set()
        for folder in self.dirs.values():
            try:
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    def oom_kills(self) -> int:
        folder = self.dirs.get("memory")
        if folder is None:
            return 0
        try:
            text = (folder / "memory.oom_control").read_text()
        except OSError:
            return 0
        found = re.search(r"^oom_kill (\d+)", text, re.M)
        if found:
            return int(found.group(1))
        return int((folder / "memory.failcnt").read_text() or 0) and 1

    def _remove(self, controller: str) -> bool:
        folder = self.dirs.get(controller)
        if folder is None:
            return True
        for _ in range(50):
            try:
                folder.rmdir()
                del self.dirs[controller]
                return True
            except FileNotFoundError:
                del self.dirs[controller]
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def remove(self) -> list[str]:
        return [str(self.dirs[c]) for c in list(self.dirs) if not self._remove(c)]


def pids_in_namespace(kind: str, inode: int) -> list[int]:
    """Host pids of the live (not zombie) processes whose ``kind`` namespace (``pid``, ``mnt``) has this inode."""
    wanted, found = f"{kind}:[{inode}]", []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.readlink(f"/proc/{entry.name}/ns/{kind}") == wanted and not _is_zombie(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _is_zombie(pid: int) -> bool:
    """A dead process whose exit status nobody has collected yet (it holds no resources)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def _can_drop_privileges() -> bool:
    return os.geteuid() == 0


def _probe(bwrap: str | None, drop: bool) -> Availability:
    if bwrap is None:
        return Availability(False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install -y bubblewrap)")
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(NOBODY), "--gid",
            str(NOBODY), "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr",
            *_system_links(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", SCRATCH, "--", "/usr/bin/true"]

    def preexec():
        _drop_privileges()

    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                               preexec_fn=preexec if drop else None)
    except (OSError, subprocess.SubprocessError) as error:
        return Availability(False, f"bubblewrap could not run: {error}")
    if probe.returncode:
        detail = probe.stderr.strip()[-500:] or f"exit code {probe.returncode}"
        hint = ""
        if "namespace" in detail.lower() or "permission" in detail.lower():
            hint = (" (user namespaces look disabled: check sysctl kernel.unprivileged_userns_clone, "
                    "user.max_user_namespaces and, on Ubuntu, kernel.apparmor_restrict_unprivileged_userns)")
        return Availability(False, f"bubblewrap failed: {detail}{hint}")
    user = f"uid {NOBODY}" if drop else f"uid {os.getuid()} mapped to {NOBODY}"
    return Availability(True, f"bubblewrap {bwrap} with user, PID, network, IPC and UTS namespaces as {user}")


@functools.cache
def availability() -> Availability:
    """Whether bubblewrap and user namespaces work here, and why not (cached per process: ``cache_clear()``)."""
    return _probe(shutil.which("bwrap"), _can_drop_privileges())


def _drop_privileges():
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def _system_links() -> list[str]:
    """Bind or link /bin, /sbin, /lib, /lib64, ... as the host has them (merged /usr or not)."""
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


_PASSWD = f"root:x:0:0:root:/root:/usr/sbin/nologin\nstudent:x:{NOBODY}:{NOBODY}:student:{SCRATCH}:/usr/sbin/nologin\n"
_GROUP = f"root:x:0:\nstudent:x:{NOBODY}:\n"
_HOSTS = "127.0.0.1 localhost sandbox\n::1 localhost\n"


class Sandbox:
    """One sandboxed process tree for one student's code; a context manager that always cleans up.

    ``kit``: the folder that goes first on ``PYTHONPATH`` (it holds the kit's ``compresslib``).
    ``inputs``: an optional file, bound read-only at ``/opt/grader/inputs<suffix>`` and named by
    ``$COMPRESSLIB_GRADER_INPUTS``. ``python``: the interpreter whose environment runs the code
    (default: this one). ``env``: extra environment variables for the inside. ``seed``: files written into
    the fresh scratch before the process starts (relative path -> text), e.g. a prebuilt cache.
    ``unsandboxed=True`` runs without bubblewrap (see the module docstring); without it, a machine that
    cannot sandbox raises :class:`SandboxError`. ``warn``: log the UNSANDBOXED warning (a sandbox rebuilt
    for the same notebook does not repeat it).
    """

    def __init__(self, kit: str | os.PathLike, *, inputs: str | os.PathLike | None = None,
                 limits: SandboxLimits = SandboxLimits(), python: str | None = None,
                 env: dict[str, str] | None = None, seed: dict[str, str] | None = None, profile: str = "quick",
                 unsandboxed: bool = False, warn: bool = True):
        self._arguments = dict(kit=kit, inputs=inputs, limits=limits, python=python, env=env, seed=seed,
                               profile=profile, unsandboxed=unsandboxed)
        self.seed = dict(seed or {})
        for relative in self.seed:
            if Path(relative).is_absolute() or ".." in Path(relative).parts:
                raise ValueError(f"seed paths must be relative to the scratch, got {relative!r}")
        self.kit = Path(kit).resolve()
        if not (self.kit / PACKAGE / "__init__.py").is_file():
            raise SandboxError(f"kit {self.kit} has no {PACKAGE}/__init__.py: pass the folder that holds the "
                               f"kit's {PACKAGE} package")
        self.inputs = Path(inputs).resolve() if inputs is not None else None
        if self.inputs is not None and not self.inputs.is_file():
            raise SandboxError(f"inputs file {self.inputs} does not exist")
        if not isinstance(limits, SandboxLimits):
            raise TypeError(f"limits must be a SandboxLimits, got {type(limits).__name__}")
        self.limits = limits
        self.python = describe_python(python or sys.executable)
        self.unsandboxed = unsandboxed
        self.profile = profile
        self.extra_env = dict(env or {})
        if not unsandboxed:
            found = availability()
            if not found:
                raise SandboxError(f"cannot sandbox here: {found.reason}. Pass unsandboxed=True (command line: "
                                   f"--unsandboxed) to run student code without protection")
        self.drop = _can_drop_privileges() and not unsandboxed
        if self.drop:
            for path in (self.kit, self.kit / PACKAGE, self.inputs):
                if path is not None and not os.stat(path).st_mode & 0o004:
                    raise SandboxError(f"{path} is not readable by others: uid {NOBODY} inside the sandbox could "
                                       f"not read it (chmod -R o+rX)")
        self.host_dir = Path(tempfile.mkdtemp(prefix="compresslib-sandbox-"))
        os.chmod(self.host_dir, 0o711)
        self.runtime_dir = self.host_dir / "run"
        self.runtime_dir.mkdir(mode=0o700)
        self.scratch_dir = self.host_dir / "scratch" if unsandboxed else None
        if unsandboxed:
            self.scratch_dir.mkdir(mode=0o700)
        if self.drop:
            os.chown(self.runtime_dir, NOBODY, NOBODY)
        self.log_path = self.host_dir / "sandbox.log"
        self.cgroups = _Cgroups(self.host_dir.name, limits)
        self.process: subprocess.Popen | None = None
        self.namespaces: dict[str, int] = {}
        self.started_at = self.setup_seconds = None
        self.closed = self.killed = False
        self._staged: list[tuple[bytes, bytes]] = []
        self._status_fd: int | None = None
        self.masked: list[str] = []
        if unsandboxed and warn:
            log.warning("UNSANDBOXED: running student code without protection: %s", "; ".join(self.unprotected))

    def sibling(self) -> Sandbox:
        """A new sandbox built with the same arguments (for a fresh start after this one's kernel was lost)."""
        return Sandbox(**self._arguments, warn=False)

    # ---- what is in effect -------------------------------------------------------------------------------

    @property
    def protections(self) -> dict[str, str]:
        """Each protection and how it is enforced here, or ``NOT IN EFFECT: why``."""
        lim, cg, off = self.limits, self.cgroups, "NOT IN EFFECT: "
        sandboxed = not self.unsandboxed
        memory = [f"RLIMIT_DATA {lim.memory_bytes / _GIB:.1f} GiB per process"]
        if "memory" in cg.dirs:
            memory.insert(0, f"cgroup v1 memory limit {lim.memory_bytes / _GIB:.1f} GiB for the whole sandbox")
        processes = []
        if "pids" in cg.dirs:
            processes.append(f"cgroup v1 pids.max {lim.processes}")
        if sandboxed:
            processes.append(f"RLIMIT_NPROC {lim.processes} in the sandbox's user namespace")
        user = (f"uid {NOBODY} on the host, no capabilities" if self.drop else
                f"uid {os.getuid()} mapped to {NOBODY} in a user namespace, no capabilities" if sandboxed else
                f"{off}runs as uid {os.getuid()} with its rights")
        return {
            "network": "own network namespace (loopback only)" if sandboxed else off + "host network",
            "filesystem": ("read-only system; only the kit, the Python environment and the inputs are visible"
                           if sandboxed else off + f"reads and writes whatever uid {os.getuid()} may"),
            "scratch": (f"tmpfs {lim.scratch_bytes // _MIB} MiB, gone with the sandbox" if sandboxed else
                        off + f"no size cap (host folder {self.scratch_dir}, removed afterwards)"),
            "user": user,
            "namespaces": ("user (no nested ones), mount, PID, IPC, UTS, network, cgroup; new session" if sandboxed
                           else off + "none"),
            "syscalls": off + "no seccomp filter (only the namespaces and the missing capabilities restrict them)",
            "memory": " + ".join(memory),
            "processes": " + ".join(processes) if processes else off + (
                "RLIMIT_NPROC is not enforced for root and would count every process of the user; no pids cgroup"),
            "cpu": f"RLIMIT_CPU {lim.cpu_seconds} s per process",
            "files": f"RLIMIT_FSIZE {lim.file_bytes // _MIB} MiB, RLIMIT_NOFILE {lim.open_files}",
            "cleanup": ("the PID namespace is killed as a whole" if sandboxed else
                        "the process group and the cgroups are killed" if cg.dirs else
                        off + "only the process group is killed; a process that left it survives"),
            "cgroups": "; ".join(f"{c}: {d}" for c, d in cg.dirs.items()) if cg.dirs else
                       off + ("; ".join(cg.problems) or "no writable cgroup v1 hierarchy"),
        }

    @property
    def unprotected(self) -> list[str]:
        """The protections not in effect, as sentences."""
        return [f"{name}: {text.removeprefix('NOT IN EFFECT: ')}"
                for name, text in self.protections.items() if text.startswith("NOT IN EFFECT")]

    # ---- building the command ------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The whole environment inside (the host's is cleared)."""
        home = SCRATCH if not self.unsandboxed else str(self.scratch_dir)
        kit = KIT if not self.unsandboxed else str(self.kit)
        threads = str(self.limits.threads)
        env = {
            "PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin" if not self.unsandboxed else
                    f"{Path(self.python.path).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home, "TMPDIR": home, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
            "PYTHONPATH": kit, "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.config/matplotlib",
            "COMPRESSLIB_PROFILE": self.profile,
            "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
            "NUMEXPR_NUM_THREADS": threads, "VECLIB_MAXIMUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": f"{home}/.cache/huggingface",
            "XDG_CACHE_HOME": f"{home}/.cache", "XDG_CONFIG_HOME": f"{home}/.config",
            "XDG_DATA_HOME": f"{home}/.local/share",
            "IPYTHONDIR": f"{home}/.ipython", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
            "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter", "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter/runtime",
            "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        if self.inputs is not None:
            env[INPUTS_VARIABLE] = self.inputs_inside
        env.update(self.extra_env)
        return env

    @property
    def runtime_inside(self) -> str:
        """The runtime folder as the sandboxed process sees it (``/run/kernel``, or the host path unsandboxed)."""
        return str(self.runtime_dir) if self.unsandboxed else RUNTIME

    @property
    def inputs_inside(self) -> str | None:
        if self.inputs is None:
            return None
        return str(self.inputs) if self.unsandboxed else f"{GRADER}/inputs{self.inputs.suffix}"

    def _stage(self, source: Path, fds: list) -> str:
        """Where bubblewrap (running as uid 65534) can reach ``source``: the path itself if every folder
        above it is searchable by others, else a bind mount, made as root in the launching process's
        private mount namespace, under this sandbox's host folder."""
        if not self.drop or _reachable_by_others(source):
            return str(source)
        stage = self.host_dir / "stage" / str(len(self._staged))
        stage.parent.mkdir(mode=0o711, exist_ok=True)
        if source.is_dir():
            stage.mkdir()
        else:
            stage.touch(mode=0o444)
        self._staged.append((str(source).encode(), str(stage).encode()))
        return str(stage)

    def _bwrap_argv(self, inner: list[str], status_fd: int, fds: list[int]) -> list[str]:
        def data(text: str) -> str:  # a file descriptor bubblewrap reads to EOF (memfd: no pipe size limit)
            fd = os.memfd_create("bwrap-data")
            os.write(fd, text.encode())
            os.lseek(fd, 0, os.SEEK_SET)
            fds.append(fd)
            return str(fd)

        env = self.environment()
        py = self.python
        argv = [shutil.which("bwrap"), "--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox", "--die-with-parent",
                "--new-session", "--cap-drop", "ALL", "--json-status-fd", str(status_fd),
                "--ro-bind", "/usr", "/usr", *_system_links(),
                "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                "--ro-bind-try", "/etc/localtime", "/etc/localtime",
                "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
                "--ro-bind-try", "/etc/fonts", "/etc/fonts",
                "--ro-bind-data", data(_PASSWD), "/etc/passwd", "--ro-bind-data", data(_GROUP), "/etc/group",
                "--ro-bind-data", data(_HOSTS), "/etc/hosts",
                "--ro-bind", self._stage(Path(py.base_prefix), fds), py.base_prefix]
        site_dirs = list(py.site_packages)
        if py.is_venv:
            inside = f"{VENV}/lib/python{py.version}/site-packages"
            venv_dirs = [d for d in site_dirs if d.startswith(os.path.realpath(py.prefix) + os.sep)]
            for site_dir in venv_dirs[:1]:
                argv += ["--ro-bind", self._stage(Path(site_dir), fds), inside]
                argv += self._mask_args(site_dir, inside)
            cfg = (f"home = {Path(py.executable).parent}\ninclude-system-site-packages = "
                   f"{str(py.system_site_packages).lower()}\nversion = {py.version}\n")
            argv += ["--ro-bind-data", data(cfg), f"{VENV}/pyvenv.cfg", "--symlink", py.executable,
                     f"{VENV}/bin/python"]
            site_dirs = [d for d in site_dirs if d not in venv_dirs]
        for site_dir in site_dirs:  # base or system site-packages: bound with the base prefix or /usr
            if not site_dir.startswith((os.path.realpath(py.base_prefix) + os.sep, "/usr/")):
                argv += ["--ro-bind", self._stage(Path(site_dir), fds), site_dir]
            argv += self._mask_args(site_dir, site_dir)
        argv += ["--ro-bind", self._stage(self.kit, fds), KIT,
                 "--ro-bind", self._stage(BOOT_SOURCE, fds), BOOT]
        if self.inputs is not None:
            argv += ["--ro-bind", self._stage(self.inputs, fds), self.inputs_inside]
        argv += ["--bind", str(self.runtime_dir), RUNTIME,
                 "--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.limits.scratch_bytes), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                 "--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu",
                 "--size", str(self.limits.scratch_bytes), "--perms", "0700", "--tmpfs", SCRATCH,
                 "--symlink", SCRATCH, "/tmp",
                 *self._seed_args(data),
                 "--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        # Passed through a pipe rather than the command line, which the sandbox could read in /proc/1/cmdline.
        return [argv[0], "--args", data("\0".join(argv[1:]) + "\0"), "--", *inner]

    def _seed_args(self, data) -> list[str]:
        args = []
        for relative, content in self.seed.items():
            for parent in reversed(Path(relative).parents[:-1]):
                args += ["--dir", f"{SCRATCH}/{parent}"]
            args += ["--file", data(content), f"{SCRATCH}/{relative}"]
        return args

    def _mask_args(self, site_dir: str, inside: str) -> list[str]:
        args = []
        for entry in _masked_entries(site_dir):
            empty = self.host_dir / ("empty-dir" if entry.is_dir() else "empty-file")
            if not empty.exists():
                empty.mkdir(mode=0o555) if entry.is_dir() else empty.touch(mode=0o444)
            args += ["--ro-bind", str(empty), f"{inside}/{entry.name}"]
            self.masked.append(str(entry))
        return args

    # ---- running ---------------------------------------------------------------------------------------------

    def spawn(self, args: list[str]) -> subprocess.Popen:
        """Start ``python BOOT args`` in the sandbox (``args`` as for the boot script: ``-m MODULE ...`` or
        ``-c CODE``); stdout and stderr go to :attr:`log_path`. One process per sandbox."""
        if self.process is not None or self.closed:
            raise SandboxError("a Sandbox runs one process; build a new one")
        boot = {"rlimits": self.limits.rlimits(nproc=not self.unsandboxed),
                "kit": KIT if not self.unsandboxed else str(self.kit)}
        self.extra_env[BOOT_VARIABLE] = json.dumps(boot)
        fds: list[int] = []
        status_read = status_write = None
        try:
            if self.unsandboxed:
                for relative, content in self.seed.items():
                    (self.scratch_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                    (self.scratch_dir / relative).write_text(content)
                argv = [self.python.path, str(BOOT_SOURCE), *args]
                env, cwd = self.environment(), str(self.scratch_dir)
            else:
                status_read, status_write = os.pipe()
                fds.append(status_write)
                argv = self._bwrap_argv([self.python.interpreter_inside, BOOT, *args], status_write, fds)
                env, cwd = {"PATH": "/usr/bin:/bin"}, str(self.host_dir)
            preexec = self._preexec_function()
            with open(self.log_path, "ab") as log_file:
                self.started_at = time.monotonic()
                self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                                env=env, cwd=cwd, pass_fds=fds, start_new_session=True,
                                                preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as error:
            if status_read is not None:
                os.close(status_read)
            raise SandboxError(f"cannot start {argv[0]}: {error}") from None
        finally:
            self.extra_env.pop(BOOT_VARIABLE, None)
            for fd in fds:
                os.close(fd)
        if status_read is not None:
            self._status_fd = status_read  # kept open until close(): bubblewrap writes the exit code there
            self.namespaces = self._read_status(status_read)
        self.setup_seconds = time.monotonic() - self.started_at
        return self.process

    def _preexec_function(self):
        procs = self.cgroups.procs_files()
        rlimits = [(getattr(resource, name), value) for name, value in
                   self.limits.rlimits(nproc=False).items()]
        staged, drop = list(self._staged), self.drop
        libc = ctypes.CDLL(None, use_errno=True) if staged else None

        def preexec():
            pid = str(os.getpid()).encode()
            for path in procs:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            if staged:
                if libc.unshare(_CLONE_NEWNS) or libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None):
                    raise OSError(ctypes.get_errno(), "cannot make a private mount namespace")
                for source, target in staged:
                    if libc.mount(source, target, None, _MS_BIND | _MS_REC, None):
                        raise OSError(ctypes.get_errno(), f"cannot stage {source!r}")
            for which, value in rlimits:
                resource.setrlimit(which, value)
            if drop:
                _drop_privileges()

        return preexec

    def _read_status(self, fd: int) -> dict[str, int]:
        """bubblewrap's first JSON status: the sandbox's pid and namespace inodes (``pid-namespace`` ...)."""
        buffer = b""
        deadline = time.monotonic() + 30
        try:
            while b"}" not in buffer and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        break
                    buffer += chunk
                elif self.process.poll() is not None:
                    break
        except OSError:
            pass
        if b"}" not in buffer:
            raise SandboxError(f"bubblewrap did not start the sandbox: {self.log_tail()}")
        status = json.loads(buffer[:buffer.index(b"}") + 1])
        return {key: int(value) for key, value in status.items()}

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_reason(self) -> str:
        """Why the sandboxed process ended, in words (out of memory, CPU limit, a signal, an exit code)."""
        if self.process is None:
            return "never started"
        code = self.process.poll()
        if code is None:
            return "still running"
        if self.cgroups.oom_kills():
            return f"killed by the out-of-memory killer (memory limit {self.limits.memory_bytes / _GIB:.1f} GiB)"
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            if sig == signal.SIGXCPU:
                return f"CPU time limit reached ({self.limits.cpu_seconds} s)"
            if sig == signal.SIGKILL and self.killed:
                return "killed by the grader"
            if sig == signal.SIGKILL:
                return "killed by SIGKILL (the out-of-memory killer, or the CPU time limit after SIGXCPU was ignored)"
            return f"killed by {_signal_name(sig)}"
        return f"exited with code {code}"

    def kill(self) -> None:
        """Kill the whole sandbox now (its PID namespace, or process group and cgroups), and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.killed = True
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        deadline = time.monotonic() + 10
        while (left := self.survivors()) and time.monotonic() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def survivors(self) -> list[int]:
        """Host pids of processes of this sandbox still alive (in its PID namespace or its cgroups)."""
        found = set(self.cgroups.pids())
        if "pid-namespace" in self.namespaces:
            found.update(pids_in_namespace("pid", self.namespaces["pid-namespace"]))
        return sorted(found)

    def close(self) -> None:
        """Kill everything, remove the cgroups and the host folder. Raises SandboxError if a process survived."""
        if self.closed:
            return
        self.closed = True
        self.kill()
        left = self.survivors()
        stuck = self.cgroups.remove()
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None
        shutil.rmtree(self.host_dir, ignore_errors=True)
        if left or stuck:
            raise SandboxError(f"sandbox processes survived: pids {left}, cgroups {stuck}")

    def log_tail(self, size: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.log_path) - size))
                return handle.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run_python(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``code`` with the sandbox's Python and wait: stdout and stderr of the run, for probes and tests."""
        process = self.spawn(["-c", code])
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        output = self.log_tail(1 << 20)
        return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach ``path`` (every folder above it searchable by others)."""
    for folder in [*reversed(path.parents)][1:] + ([path] if path.is_dir() else []):
        try:
            if not os.stat(folder).st_mode & 0o001:
                return False
        except OSError:
            return False
    try:
        return bool(os.stat(path).st_mode & 0o004)
    except OSError:
        return False
