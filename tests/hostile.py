"""What the sandbox and executor tests share (tests/test_sandbox.py, tests/test_execute.py).

A stand-in student kit (a tiny ``compresslib``), a course folder full of canaries (gradebook, solutions,
another student's submission), and the evidence that a hostile run read, changed or left nothing behind:
an inotify watch on the course folder, a snapshot of its files, a search for marked processes, and a
TCP server on the host's loopback that records who connects.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import socket
import struct
import threading
import uuid
from pathlib import Path

CANARY = f"CANARY-{uuid.uuid4().hex}"

_IN_EVENTS = {0x1: "ACCESS", 0x2: "MODIFY", 0x4: "ATTRIB", 0x8: "CLOSE_WRITE", 0x20: "OPEN", 0x40: "MOVED_FROM",
              0x80: "MOVED_TO", 0x100: "CREATE", 0x200: "DELETE"}


def make_kit(folder: Path, body: str = "") -> Path:
    """A stand-in student kit: ``folder/compresslib/__init__.py`` saying where it comes from, plus ``body``."""
    package = folder / "compresslib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'WHERE = "stand-in kit"\n{body}\n')
    for path in (folder, package, package / "__init__.py"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


class Course:
    """A course folder as an instructor has it, every file holding :data:`CANARY`."""

    FILES = ("gradebook.db", "solutions/01_soft_targets/01_soft_targets.ipynb",
             "submitted/bob/01_soft_targets/01_soft_targets.ipynb", "source/01_soft_targets/hidden_tests.json",
             "compresslib/grading/fixtures/01_soft_targets.json")

    def __init__(self, root: Path):
        self.root = root
        for relative in self.FILES:
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{CANARY} {relative}\n")
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)  # readable by anyone on the host: only the sandbox stands in the way
        self.paths = [root / relative for relative in self.FILES]

    def snapshot(self) -> dict[str, tuple]:
        """Every file and folder under the course: size, mtime and content hash."""
        found = {}
        for path in sorted([self.root, *self.root.rglob("*")]):
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(self.root))] = (stat.st_mode, stat.st_size, stat.st_mtime_ns, digest)
        return found

    def watch(self) -> Inotify:
        return Inotify([self.root, *(p for p in self.root.rglob("*") if p.is_dir())])


class Inotify:
    """Records every open, read, write, create or delete in some folders (and their files) until closed."""

    def __init__(self, folders: list[Path]):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.folders = {}
        for folder in folders:
            wd = self._libc.inotify_add_watch(self.fd, str(folder).encode(), sum(_IN_EVENTS))
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
            self.folders[wd] = folder

    def events(self) -> list[str]:
        """``"<event> <path>"`` for each event seen so far."""
        found = []
        while True:
            try:
                buffer = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(buffer):
                wd, mask, _, length = struct.unpack_from("iIII", buffer, offset)
                name = buffer[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
                offset += 16 + length
                kinds = "|".join(n for bit, n in _IN_EVENTS.items() if mask & bit)
                found.append(f"{kinds} {self.folders.get(wd, '?')}/{name}")

    def close(self):
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def processes_with(marker: str) -> list[int]:
    """Host pids of live processes whose command line contains ``marker``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry.name))
    return found


class LoopbackServer:
    """A TCP server on the host's 127.0.0.1 that counts connections, for the network tests."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


PROBE_READS = """
import os
found, errors = [], []
for path in {paths!r}:
    try:
        found.append(open(path).read())
    except OSError as error:
        errors.append(type(error).__name__)
for folder, dirs, files in os.walk("/"):
    if folder in ("/proc", "/sys", "/usr", "/dev", "/opt/venv") or folder.startswith("/root/.pyenv"):
        dirs[:] = []  # the system, the Python installation, and devices (a pty would block a read)
        continue
    for name in files:
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                if bytes.fromhex({canary_hex!r}) in handle.read(1 << 20):
                    found.append(os.path.join(folder, name))
        except OSError:
            pass
mounts = open("/proc/self/mountinfo").read()
print("FOUND", len(found), "ERRORS", sorted(set(errors)), "MOUNTED", {course!r} in mounts)
"""


def probe_reads(course: Course) -> str:
    """Code that tries to read the course's canaries by path and by searching the whole visible tree (the
    canary is written in hex, so that the code itself, kept in the kernel's history, does not hold it)."""
    return PROBE_READS.format(paths=[str(p) for p in course.paths], canary_hex=CANARY.encode().hex(),
                              course=str(course.root))
