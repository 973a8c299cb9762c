"""Run a student's notebook in a grading sandbox, robustly, and report what happened to each cell.

:func:`execute_notebook` starts an IPython kernel inside a :class:`~compresslib.grading.sandbox.Sandbox`
(jupyter_client over the IPC transport: unix sockets in a folder bound into the sandbox, since TCP cannot
cross its network namespace) and runs every code cell in order:

* each cell has a timeout (``cell_timeout``) and the notebook a wall budget (``notebook_timeout``). On a
  timeout the kernel is interrupted; if it has not answered ``interrupt_grace`` seconds later, the whole
  sandbox is killed;
* when the kernel is gone (killed after a timeout, ``os._exit``, a segfault, the out-of-memory killer, the
  CPU limit), the cell is recorded as ``timeout`` or ``died``, a fresh sandbox starts, the cells that had
  completed before are replayed there (their first outputs are kept, the replay's discarded), the failed
  cell is skipped and execution continues, up to ``max_restarts`` fresh sandboxes;
* a graded test cell runs its hidden-test block and then its visible part as two executions, so that the
  hidden tests' report has arrived before the student's code in the visible part can crash the kernel;
* output is counted in bytes as it arrives and kept up to ``cell_output_bytes`` per cell and
  ``total_output_bytes`` per notebook; the rest is dropped and the cell gets one note saying how much.
  Outputs carrying a ``protected_mime_types`` type (the hidden tests' capture) have their own per-cell
  allowance, so a flood elsewhere cannot crowd them out. The kernel sends stream output in chunks of
  at most 256 KiB and replaces any message over ``message_bytes`` by a short note (the client refuses
  bigger ones, and zmq would cut the connection), so a 50 MB print never sits in this process's memory
  and one huge display does not cost the outputs of the cells after it;
* display updates (``update_display_data``, repeated display ids) and widget messages are ignored: they
  could rewrite other cells' outputs or grow without bound. An output that is not a valid MIME bundle
  (a non-string ``text/plain``, JSON nested deeper than :data:`MAX_OUTPUT_DEPTH`) is dropped and counted:
  it would make the notebook unwritable or fail nbgrader on the trusted side. ``input()`` fails at once
  (no stdin channel), except in a graded test cell whose stand-ins the oracle answers (:class:`StdinOracle`).

nbclient's cell loop is not used because it cannot kill a kernel that ignores interrupts, keeps every
output, and applies display updates across cells; the outputs are built with nbformat's
``output_from_msg`` as nbclient builds them.

For a process pool or Dask, :func:`execute_notebook_json` takes and returns plain data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import nbformat
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient

from compresslib.grading.sandbox import NOBODY, Sandbox, SandboxError, SandboxLimits

log = logging.getLogger(__name__)

CAPTURE_MIME = "application/vnd.compresslib.capture+json"
STATUSES = ("ok", "error", "timeout", "died", "skipped", "not_run")
GRADER_NOTE = "compresslib_grader"
STREAM_CHUNK = 256 * 1024
_MIB = 1 << 20
_BATCH = 200  # messages read in a row before the timeout and the kernel's life are checked again
_OUTPUT_OVERHEAD = 64  # bytes charged per new output, so that a million empty outputs also run out
MAX_OUTPUT_DEPTH = 64  # nesting of an output's data and metadata (a capture report nests about 10 deep)

# Run by the sandbox's boot script: the IPython kernel, sending stream output in bounded chunks, keeping
# itself alive on exit() / quit() (which would otherwise stop it a moment later, and again after each
# replay), and never sending a message larger than the client accepts: zmq drops the connection of a
# peer that sends a message over ZMQ_MAXMSGSIZE, so one big display (a large image or table) would
# silently cut off the outputs, hidden-test reports included, of every later cell. Such a message is
# replaced by a short note (an output), or loses its bulky fields (a reply, a prompt, binary buffers).
_KERNEL_CODE = """
import sys
from ipykernel import iostream
from ipykernel.kernelapp import launch_new_instance
from ipykernel.zmqshell import ZMQInteractiveShell
from jupyter_client.session import Session
_ask_exit = ZMQInteractiveShell.ask_exit
def _stay(self):
    self.keepkernel_on_exit = True
    _ask_exit(self)
ZMQInteractiveShell.ask_exit = _stay
_buffers = getattr(iostream.OutStream, "_flush_buffers", None)
if _buffers is not None:
    def _chunked(self):
        for parent, data in _buffers(self):
            for start in range(0, len(data), __CHUNK__):
                yield parent, data[start:start + __CHUNK__]
    iostream.OutStream._flush_buffers = _chunked
_LIMIT = __LIMIT__
_OUTPUTS = ("stream", "display_data", "execute_result", "update_display_data", "error")
_serialize, _send = Session.serialize, Session.send
def _bounded_serialize(self, msg, ident=None):
    frames = _serialize(self, msg, ident)
    size = sum(len(frame) for frame in frames)
    if size <= _LIMIT:
        return frames
    kind, content = msg["header"].get("msg_type"), msg.get("content") or {}
    note = f"[grader] a {kind} message of {size:,} bytes was not sent (over {_LIMIT:,} bytes)"
    if kind in _OUTPUTS:
        kind, content = "display_data", {"data": {"text/plain": note}, "metadata": {}, "transient": {}}
    elif kind == "execute_reply":
        content = {"status": content.get("status", "error"), "execution_count": content.get("execution_count"),
                   "ename": str(content.get("ename", ""))[:200], "evalue": str(content.get("evalue", ""))[:1000],
                   "traceback": [], "payload": [], "user_expressions": {}}
    elif kind == "input_request":
        content = {"prompt": "", "password": False}
    else:
        content = {}
    return _serialize(self, dict(msg, header=dict(msg["header"], msg_type=kind), msg_type=kind, content=content), ident)
def _bounded_send(self, stream, msg_or_type, content=None, parent=None, ident=None, buffers=None, *args, **kwargs):
    def big(parts):
        return sum(memoryview(part).nbytes for part in parts or ()) > _LIMIT
    if big(buffers):
        buffers = None
    if isinstance(msg_or_type, dict) and big(msg_or_type.get("buffers")):
        msg_or_type = dict(msg_or_type, buffers=[])
    return _send(self, stream, msg_or_type, content, parent, ident, buffers, *args, **kwargs)
Session.serialize, Session.send = _bounded_serialize, _bounded_send
launch_new_instance(argv=sys.argv[1:])
"""


def _kernel_code(policy: ExecutionPolicy) -> str:
    """The kernel's start code for this policy: messages kept 64 KiB under what the client accepts."""
    limit = max(policy.message_bytes - 64 * 1024, 64 * 1024)
    return _KERNEL_CODE.replace("__CHUNK__", str(STREAM_CHUNK)).replace("__LIMIT__", str(limit))


@dataclass(frozen=True)
class ExecutionPolicy:
    """How a notebook is run. Times in seconds, sizes in bytes."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0
    startup_timeout: float = 60.0
    interrupt_grace: float = 3.0
    max_restarts: int = 3
    cell_output_bytes: int = 1 * _MIB
    total_output_bytes: int = 8 * _MIB
    protected_mime_types: tuple[str, ...] = (CAPTURE_MIME,)
    protected_output_bytes: int = 1 * _MIB
    message_bytes: int = 4 * _MIB
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    profile: str = "quick"
    python: str | None = None
    skip_tags: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("cell_timeout", "notebook_timeout", "startup_timeout", "interrupt_grace"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"ExecutionPolicy.{name} must be a positive number of seconds, got {value!r}")
        for name in ("cell_output_bytes", "total_output_bytes", "protected_output_bytes", "message_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ExecutionPolicy.{name} must be a positive number of bytes, got {value!r}")
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) or self.max_restarts < 0:
            raise ValueError(f"ExecutionPolicy.max_restarts must be an integer >= 0, got {self.max_restarts!r}")
        if isinstance(self.limits, dict):
            object.__setattr__(self, "limits", SandboxLimits(**self.limits))
        object.__setattr__(self, "protected_mime_types", tuple(self.protected_mime_types))
        object.__setattr__(self, "skip_tags", tuple(self.skip_tags))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExecutionPolicy:
        return cls(**data)


@dataclass
class CellRecord:
    """What happened to one code cell. ``index`` is its position in ``notebook.cells``."""

    index: int
    cell_id: str | None
    grade_id: str | None
    status: str = "not_run"
    seconds: float = 0.0
    output_bytes: int = 0
    dropped_bytes: int = 0
    message: str = ""


@dataclass
class ExecutionResult:
    """The executed notebook, one :class:`CellRecord` per code cell, and how the run went."""

    notebook: nbformat.NotebookNode
    cells: list[CellRecord]
    seconds: float
    restarts: int
    sandboxed: bool
    protections: dict[str, str]
    unprotected: list[str]
    timings: dict[str, float]
    error: str | None = None

    @property
    def totals(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for record in self.cells:
            counts[record.status] += 1
        return counts

    def record(self, grade_id: str) -> CellRecord:
        """The record of the cell with this nbgrader grade_id."""
        for record in self.cells:
            if record.grade_id == grade_id:
                return record
        raise KeyError(f"no code cell with grade_id {grade_id!r}")

    def to_dict(self) -> dict:
        """Plain data: the notebook as JSON text, the records as dicts."""
        return {"notebook": nbformat.writes(self.notebook), "cells": [dataclasses.asdict(c) for c in self.cells],
                "seconds": self.seconds, "restarts": self.restarts, "sandboxed": self.sandboxed,
                "protections": dict(self.protections), "unprotected": list(self.unprotected),
                "timings": dict(self.timings), "totals": self.totals, "error": self.error}

    @classmethod
    def from_dict(cls, data: dict) -> ExecutionResult:
        return cls(nbformat.reads(data["notebook"], as_version=4), [CellRecord(**c) for c in data["cells"]],
                   data["seconds"], data["restarts"], data["sandboxed"], data["protections"], data["unprotected"],
                   data["timings"], data["error"])


class StdinOracle(Protocol):
    """Answers the stand-ins' requests (``input(prompt)``) in one graded test cell, or None where the cell
    gets no stdin. ``earlier``: the grade ids of the graded test cells before it in the notebook."""

    def handler(self, grade_id: str | None, earlier: Collection[str]) -> Callable[[str], str] | None: ...


def execute_notebook_json(notebook_json: str, kit: str, inputs: str | None = None,
                          policy: ExecutionPolicy | dict | None = None, unsandboxed: bool = False,
                          assignment: str | None = None) -> dict:
    """:func:`execute_notebook` on plain data, for a process pool or Dask: notebook JSON text in,
    :meth:`ExecutionResult.to_dict` out. With ``assignment`` and ``inputs``, the dependent hidden tests'
    stand-ins are answered by the grader's oracle (:mod:`compresslib.grading.oracle`)."""
    oracle = None
    if assignment and inputs:
        from compresslib.grading.oracle import StandInOracle

        oracle = StandInOracle.from_inputs(assignment, inputs)
    if isinstance(policy, dict):
        policy = ExecutionPolicy.from_dict(policy)
    try:
        notebook = nbformat.reads(notebook_json, as_version=4)
    except Exception as error:  # nbformat raises several types for a file that is not a notebook
        raise ValueError(f"not a notebook: {error}") from None
    return execute_notebook(notebook, kit, inputs=inputs, policy=policy or ExecutionPolicy(),
                            unsandboxed=unsandboxed, oracle=oracle).to_dict()


def execute_notebook(notebook: nbformat.NotebookNode, kit: str | os.PathLike, *,
                     inputs: str | os.PathLike | None = None, policy: ExecutionPolicy = ExecutionPolicy(),
                     unsandboxed: bool = False, oracle: StdinOracle | None = None) -> ExecutionResult:
    """Run every code cell of ``notebook`` (a copy is executed) in a sandbox with ``kit`` first on the path.

    Raises :class:`~compresslib.grading.sandbox.SandboxError` before any work if this machine cannot
    sandbox and ``unsandboxed`` is False. Never raises because of what the notebook does.
    """
    if not isinstance(policy, ExecutionPolicy):
        raise TypeError(f"policy must be an ExecutionPolicy, got {type(policy).__name__}")
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    # Built here, before any work, so that a bad kit or a machine that cannot sandbox fails at once.
    first = Sandbox(kit, inputs=inputs, limits=policy.limits, python=policy.python, profile=policy.profile,
                    seed=matplotlib_cache(kit, policy.python, unsandboxed), unsandboxed=unsandboxed)
    run = _NotebookRun(notebook, first, policy, oracle)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run.execute())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from a running event loop (Jupyter)
        return pool.submit(asyncio.run, run.execute()).result()


_FONT_CACHE = """
import os, matplotlib, matplotlib.font_manager as fm
name = f"fontlist-v{fm.FontManager.__version__}.json"
with open(os.path.join(matplotlib.get_cachedir(), name)) as source, open(os.path.join(%r, name), "w") as copy:
    copy.write(source.read())
"""


def matplotlib_cache(kit, python: str | None, unsandboxed: bool) -> dict[str, str]:
    """matplotlib's font cache as a scratch seed (relative path -> JSON text), built once per process in a
    sandbox like the students' (the font paths it records are the ones seen inside), so that each fresh
    scratch does not spend ~2 s rebuilding it. Empty if the environment has no matplotlib."""
    return _matplotlib_cache(str(Path(kit).resolve()), python or sys.executable, unsandboxed)


@functools.cache
def _matplotlib_cache(kit: str, python: str, unsandboxed: bool) -> dict[str, str]:
    with Sandbox(kit, python=python, unsandboxed=unsandboxed, warn=False) as sandbox:
        done = sandbox.run_python(_FONT_CACHE % sandbox.runtime_inside, timeout=120)
        built = sorted(sandbox.runtime_dir.glob("fontlist-v*.json"))
        if done.returncode or not built:
            log.info("no matplotlib font cache to seed: %s", done.stdout[-300:])
            return {}
        return {f".config/matplotlib/{built[0].name}": built[0].read_text()}


class _KernelGone(Exception):
    """The kernel could not be started."""


@dataclass
class _Outcome:
    status: str
    seconds: float
    message: str = ""
    kernel_lost: bool = False


def _make_output(kind: str, content: dict, execution_count: int) -> nbformat.NotebookNode | None:
    """The notebook output for an IOPub message, as nbformat's ``output_from_msg`` builds it, or None when the
    message is malformed. Checked by hand: jsonschema validation costs milliseconds per message."""
    if not isinstance(content, dict):
        return None
    if kind == "stream":
        name, text = content.get("name"), content.get("text")
        if name in ("stdout", "stderr") and isinstance(text, str):
            return nbformat.NotebookNode(output_type="stream", name=name, text=text)
        return None
    if kind == "error":
        traceback = content.get("traceback", [])
        if isinstance(traceback, list) and all(isinstance(line, str) for line in traceback):
            return nbformat.NotebookNode(output_type="error", ename=str(content.get("ename", "")),
                                         evalue=str(content.get("evalue", "")), traceback=traceback)
        return None
    data, metadata = content.get("data", {}), content.get("metadata", {})
    if not (isinstance(data, dict) and isinstance(metadata, dict) and all(isinstance(k, str) for k in data)):
        return None
    if not _is_mime_bundle(data) or not _nesting_within(metadata, MAX_OUTPUT_DEPTH):
        return None
    out = nbformat.NotebookNode(output_type=kind, data=nbformat.from_dict(data), metadata=nbformat.from_dict(metadata))
    if kind == "execute_result":
        out.execution_count = execution_count
    return out


_JSON_MIME = re.compile(r"^application/(.*\+)?json$")


def _nesting_within(value, limit: int) -> bool:
    """Whether lists and dicts in ``value`` nest at most ``limit`` deep (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return False
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return True


def _is_mime_bundle(data: dict) -> bool:
    """nbformat's rule for output data: a JSON type holds any JSON (here nested at most
    :data:`MAX_OUTPUT_DEPTH` deep: a deeper one breaks writing the notebook, or the trusted side reading
    it), any other type a string or a list of strings."""
    for mime, value in data.items():
        if _JSON_MIME.match(mime):
            if not _nesting_within(value, MAX_OUTPUT_DEPTH):
                return False
        elif not (isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return False
    return True


class _OutputBudget:
    """Keeps a cell's outputs within the policy's byte limits, counting what it drops.

    An output costs the size of its message content as received (JSON bytes), plus a small overhead per
    new output; consecutive stream outputs of the same name are merged into one.
    """

    def __init__(self, policy: ExecutionPolicy, *, discard: bool = False):
        self.policy, self.discard = policy, discard
        self.total = 0
        self.start_cell()

    def start_cell(self):
        self.cell = self.protected = self.dropped = 0

    def _room(self, protected: bool) -> int:
        if protected:
            return self.policy.protected_output_bytes - self.protected
        return min(self.policy.cell_output_bytes - self.cell, self.policy.total_output_bytes - self.total)

    def _charge(self, protected: bool, cost: int) -> None:
        if protected:
            self.protected += cost
        else:
            self.cell += cost
            self.total += cost

    def add(self, outputs: list, kind: str, raw: bytes, unpack, execution_count: int) -> None:
        """Keep (all or part of) the output carried by ``raw`` (the message content, JSON) if it fits."""
        size = len(raw)
        if self.discard:
            return
        maybe_protected = kind in ("display_data", "execute_result") and any(
            mime.encode() in raw for mime in self.policy.protected_mime_types)
        if self._room(maybe_protected) <= 0:
            self.dropped += size
            return
        out = _make_output(kind, _safe(unpack, raw), execution_count)
        if out is None:
            self.dropped += size
            return
        protected = maybe_protected and any(mime in out.get("data", {}) for mime in self.policy.protected_mime_types)
        room = self._room(protected)
        if out.output_type != "stream":
            cost = size + _OUTPUT_OVERHEAD
            if cost > room:
                self.dropped += size
                return
            outputs.append(out)
            self._charge(protected, cost)
            return
        merge = bool(outputs) and outputs[-1].output_type == "stream" and outputs[-1].name == out.name
        overhead = 0 if merge else _OUTPUT_OVERHEAD
        data = out.text.encode()
        keep = min(len(data), max(0, room - overhead))
        self.dropped += len(data) - keep
        if keep == 0:
            return
        text = data[:keep].decode(errors="ignore") if keep < len(data) else out.text
        if merge:
            outputs[-1].text += text
        else:
            out.text = text
            outputs.append(out)
        self._charge(protected, keep + overhead)

    def clear(self, outputs: list) -> None:
        outputs[:] = []
        self.total -= self.cell
        self.cell = self.protected = 0

    def finish_cell(self, outputs: list) -> None:
        if self.dropped and not self.discard:
            text = (f"[grader] {self.dropped:,} bytes of output dropped (limits: "
                    f"{self.policy.cell_output_bytes:,} bytes per cell, {self.policy.total_output_bytes:,} "
                    f"per notebook)")
            outputs.append(nbformat.v4.new_output("display_data", data={"text/plain": text},
                                                  metadata={GRADER_NOTE: {"dropped_bytes": self.dropped}}))


def _safe(unpack, raw: bytes):
    try:
        return unpack(raw)
    except Exception:  # noqa: BLE001 - malformed JSON from the kernel: the output is dropped
        return None


class _Kernel:
    """One sandbox running one IPython kernel, and a client connected to it over IPC."""

    def __init__(self, sandbox: Sandbox, policy: ExecutionPolicy):
        self.sandbox, self.policy = sandbox, policy
        self.context = zmq.asyncio.Context()
        self.context.setsockopt(zmq.MAXMSGSIZE, policy.message_bytes)
        self.context.setsockopt(zmq.RCVHWM, 64)
        self.context.setsockopt(zmq.RECONNECT_IVL, 20)
        self.client: AsyncKernelClient | None = None
        self.start_seconds = 0.0
        self.executed = 0

    def _connection(self, folder: str, key: str) -> dict:
        return {"transport": "ipc", "ip": f"{folder}/kernel", "shell_port": 1, "iopub_port": 2, "stdin_port": 3,
                "control_port": 4, "hb_port": 5, "key": key, "signature_scheme": "hmac-sha256", "kernel_name": ""}

    async def start(self) -> None:
        started = time.monotonic()
        key = secrets.token_hex(32)
        inside = self.sandbox.runtime_dir / "connection.json"
        inside.write_text(json.dumps(self._connection(self.sandbox.runtime_inside, key)))
        if self.sandbox.drop:
            os.chown(inside, NOBODY, NOBODY)
        os.chmod(inside, 0o400)
        try:
            self.sandbox.spawn(["-c", _kernel_code(self.policy), "-f", f"{self.sandbox.runtime_inside}/connection.json",
                                "--HistoryManager.hist_file=:memory:"])
        except SandboxError as error:
            raise _KernelGone(str(error)) from None
        self.client = AsyncKernelClient(context=self.context)
        self.client.load_connection_info(self._connection(str(self.sandbox.runtime_dir), key))
        self.client.start_channels(shell=True, iopub=True, stdin=True, hb=False, control=True)
        await self._wait_ready(started + self.policy.startup_timeout)
        if self.sandbox.drop:  # the sockets are bound: the sandbox may no longer create files in this folder
            os.chown(self.sandbox.runtime_dir, 0, 0)
            os.chmod(self.sandbox.runtime_dir, 0o755)
        self.start_seconds = time.monotonic() - started

    async def _wait_ready(self, deadline: float) -> None:
        shell, iopub = self.client.shell_channel, self.client.iopub_channel
        while True:
            msg_id = self.client.kernel_info()
            retry = min(deadline, time.monotonic() + 1.0)
            while time.monotonic() < retry:
                if not self.sandbox.alive():
                    raise _KernelGone(f"the kernel did not start: {self.sandbox.exit_reason()}\n"
                                      f"{self.sandbox.log_tail()}")
                if await shell.socket.poll(50):
                    reply = await self._receive(shell)
                    if reply and reply["parent_header"].get("msg_id") == msg_id:
                        if await iopub.socket.poll(200):  # IOPub is connected too: it saw this request
                            while await iopub.socket.poll(0):
                                await self._receive(iopub)
                            return
                        break
            if time.monotonic() >= deadline:
                raise _KernelGone(f"the kernel did not answer within {self.policy.startup_timeout:g} s\n"
                                  f"{self.sandbox.log_tail()}")

    async def _receive(self, channel) -> dict | None:
        """One message, its content left as JSON bytes (unpacked only when kept), or None if malformed."""
        try:
            frames = await channel.socket.recv_multipart()
            _, frames = self.client.session.feed_identities(frames)
            return self.client.session.deserialize(frames, content=False)
        except Exception:  # noqa: BLE001 - a malformed or unsigned message from the kernel is dropped
            return None

    def interrupt(self) -> None:
        self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))

    async def run(self, source: str, timeout: float, outputs: list, budget: _OutputBudget,
                  answer: Callable[[str], str] | None = None) -> _Outcome:
        """Execute ``source``, putting its outputs into ``outputs`` within ``budget``. With ``answer``, the
        cell may read stdin: each ``input(prompt)`` gets ``answer(prompt)`` (the stand-ins' oracle);
        without it, ``input()`` fails at once."""
        started = time.monotonic()
        self.executed += 1
        msg_id = self.client.execute(source, store_history=True, allow_stdin=answer is not None, stop_on_error=False)
        shell, iopub, stdin = self.client.shell_channel, self.client.iopub_channel, self.client.stdin_channel
        poller = zmq.asyncio.Poller()
        poller.register(shell.socket, zmq.POLLIN)
        poller.register(iopub.socket, zmq.POLLIN)
        if answer is not None:
            poller.register(stdin.socket, zmq.POLLIN)
        deadline, interrupted_at, reply, idle = started + timeout, None, None, False
        last_activity, clear_on_next = started, False
        while True:
            now = time.monotonic()
            late = now > deadline + self.policy.interrupt_grace
            if reply is not None and (idle or now - last_activity > 2.0 or late):
                break  # outputs end with the kernel's idle status (or 2 s of silence after the reply, or the deadline)
            if not self.sandbox.alive():
                await self._drain(iopub, msg_id, outputs, budget, limit=0.2)
                return _Outcome("died", now - started, f"kernel died: {self.sandbox.exit_reason()}", True)
            if reply is None and now >= deadline and interrupted_at is None:
                interrupted_at = now
                self.interrupt()
            if interrupted_at is not None and reply is None and now - interrupted_at >= self.policy.interrupt_grace:
                self.sandbox.kill()
                return _Outcome("timeout", now - started, f"timed out after {timeout:g} s; the kernel ignored the "
                                f"interrupt and was killed", True)
            events = dict(await poller.poll(100))
            if shell.socket in events:  # at most _BATCH messages between two looks at the clock and the kernel
                for _ in range(_BATCH):
                    if not await shell.socket.poll(0):
                        break
                    msg = await self._receive(shell)
                    if msg and msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_reply":
                        reply, last_activity = msg, time.monotonic()
            if answer is not None and stdin.socket in events:
                request = await self._receive(stdin)
                if request and request["msg_type"] == "input_request" \
                        and request["parent_header"].get("msg_id") == msg_id:
                    content = _safe(self.client.session.unpack, request["content"])
                    prompt = content.get("prompt", "") if isinstance(content, dict) else ""
                    self.client.input(answer(prompt if isinstance(prompt, str) else ""))
                    last_activity = time.monotonic()
            if iopub.socket in events:
                for _ in range(_BATCH):
                    if idle or not await iopub.socket.poll(0):
                        break
                    msg = await self._receive(iopub)
                    if not msg or msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    last_activity = time.monotonic()
                    idle, clear_on_next = self._handle(msg, outputs, budget, clear_on_next)
        seconds = time.monotonic() - started
        content = _safe(self.client.session.unpack, reply["content"])
        content = content if isinstance(content, dict) else {}
        if interrupted_at is not None:
            return _Outcome("timeout", seconds, f"timed out after {timeout:g} s; interrupted")
        if content.get("status") == "ok":
            return _Outcome("ok", seconds)
        message = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"[:500]
        return _Outcome("error", seconds, message)

    def _handle(self, msg: dict, outputs: list, budget: _OutputBudget, clear_on_next: bool) -> tuple[bool, bool]:
        """Apply one IOPub message of the running cell; returns (idle seen, clear before the next output)."""
        kind, raw, unpack = msg["msg_type"], msg["content"], self.client.session.unpack
        if kind == "status":
            content = _safe(unpack, raw) if len(raw) < 4096 else None
            return isinstance(content, dict) and content.get("execution_state") == "idle", clear_on_next
        if kind == "clear_output":
            content = _safe(unpack, raw) if len(raw) < 4096 else None
            if isinstance(content, dict) and content.get("wait"):
                return False, True
            budget.clear(outputs)
            return False, False
        if kind in ("stream", "display_data", "execute_result", "error"):
            if clear_on_next:
                budget.clear(outputs)
            budget.add(outputs, kind, raw, unpack, self.executed)
            return False, False
        return False, clear_on_next

    async def _drain(self, iopub, msg_id: str, outputs: list, budget: _OutputBudget, limit: float) -> None:
        """Take the outputs already sent by a kernel that has just died."""
        end, clear = time.monotonic() + limit, False
        while time.monotonic() < end and await iopub.socket.poll(20):
            msg = await self._receive(iopub)
            if msg and msg["parent_header"].get("msg_id") == msg_id:
                _, clear = self._handle(msg, outputs, budget, clear)

    def close(self) -> str | None:
        """Kill the sandbox and free the client; returns a problem to report, if any."""
        if self.client is not None:
            self.client.stop_channels()
        self.context.destroy(linger=0)
        try:
            self.sandbox.close()
        except SandboxError as error:
            log.error("%s", error)
            return str(error)
        return None


HIDDEN_TESTS_END = "### END HIDDEN TESTS"


def _hidden_first(source: str) -> list[str]:
    """A test cell's source split after its hidden-test block (one part when it has none)."""
    lines = source.splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if line.strip() == HIDDEN_TESTS_END]
    if not ends or not "".join(lines[ends[-1] + 1:]).strip():
        return [source]
    return ["".join(lines[:ends[-1] + 1]), "".join(lines[ends[-1] + 1:])]


class _NotebookRun:
    def __init__(self, notebook, first: Sandbox, policy: ExecutionPolicy, oracle: StdinOracle | None = None):
        self.notebook, self.policy, self.next_sandbox, self.sandbox = notebook, policy, first, first
        self.oracle = oracle
        self.unsandboxed = first.unsandboxed
        self.code = [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
        self.records = [CellRecord(i, c.get("id"), c.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
                        for i, c in self.code]
        self._is_test = [c.get("metadata", {}).get("nbgrader", {}).get("grade") is True for _, c in self.code]
        for _, cell in self.code:
            cell.outputs, cell.execution_count = [], None
        self.timings = {"sandbox_setup": 0.0, "kernel_start": 0.0, "replay": 0.0, "cells": 0.0}
        self.restarts, self.problems = 0, []

    def _new_kernel(self) -> _Kernel:
        sandbox, self.next_sandbox = self.next_sandbox, None
        if sandbox is None:
            sandbox = self.sandbox.sibling()
        self.sandbox = sandbox
        return _Kernel(sandbox, self.policy)

    async def _fresh_kernel(self, replay: list[int], deadline: float) -> _Kernel | None:
        """A started kernel that has replayed ``replay`` (positions in self.code), or None when the restarts or
        the time are spent. A cell whose replay fails is left out of later replays."""
        while True:
            kernel = self._new_kernel()
            try:
                await kernel.start()
                failed = await self._replay(kernel, replay, deadline)
            except _KernelGone as error:
                self._close(kernel)
                self.problems.append(str(error))
                if not self._may_restart(deadline):
                    return None
                continue
            except BaseException:
                self._close(kernel)
                raise
            finally:
                self.timings["sandbox_setup"] += kernel.sandbox.setup_seconds or 0.0
                self.timings["kernel_start"] += kernel.start_seconds
            if failed is None:
                return kernel
            replay.remove(failed)
            self.records[failed].message += " (replay after a restart failed; left out of later replays)"
            self._close(kernel)
            if not self._may_restart(deadline):
                return None

    def _answer(self, position: int) -> Callable[[str], str] | None:
        """The oracle's stdin handler for the code cell at ``position``: only graded test cells (nbgrader
        ``grade: true``) may get one, and the oracle sees which test cells come before this one."""
        if self.oracle is None or not self._is_test[position]:
            return None
        earlier = {r.grade_id for r, test in zip(self.records[:position], self._is_test) if test and r.grade_id}
        return self.oracle.handler(self.records[position].grade_id, earlier)

    def _may_restart(self, deadline: float) -> bool:
        if self.restarts >= self.policy.max_restarts or time.monotonic() >= deadline:
            return False
        self.restarts += 1
        return True

    async def _replay(self, kernel: _Kernel, replay: list[int], deadline: float) -> int | None:
        started = time.monotonic()
        try:
            for position in replay:
                cell = self.code[position][1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return position
                outcome = await kernel.run(cell.source, min(self.policy.cell_timeout, left), [],
                                           _OutputBudget(self.policy, discard=True), self._answer(position))
                if outcome.kernel_lost or outcome.status == "timeout":
                    return position
            return None
        finally:
            self.timings["replay"] += time.monotonic() - started

    async def _run_cell(self, kernel: _Kernel, position: int, cell, left: float, budget: _OutputBudget) -> _Outcome:
        """Run one cell. A graded test cell runs its hidden-test block first, as an execution of its own: the
        kernel's idle status after it comes after the report on the same ordered channel, so the report is
        in hand before the visible part runs, and a crash there (a segfault, ``os._exit``) cannot lose it.
        (Sent in one execution, the report left the kernel from a background thread and was lost in 7 of 20
        such crashes under load.) The block is the instructor's: nbgrader restores test cells from the
        gradebook before grading."""
        parts = _hidden_first(cell.source) if self._is_test[position] else [cell.source]
        answer, total, outcome = self._answer(position), 0.0, None
        for part in parts:
            timeout = min(self.policy.cell_timeout - total, left - total)
            outcome = await kernel.run(part, timeout, cell.outputs, budget, answer)
            total += outcome.seconds
            if outcome.status != "ok":
                break
        return dataclasses.replace(outcome, seconds=total)

    def _close(self, kernel: _Kernel) -> None:
        problem = kernel.close()
        if problem:
            self.problems.append(problem)

    async def execute(self) -> ExecutionResult:
        started = time.monotonic()
        deadline = started + self.policy.notebook_timeout
        budget = _OutputBudget(self.policy)
        kernel, replay, stopped, first = None, [], "", True
        try:
            for position, (_, cell) in enumerate(self.code):
                record = self.records[position]
                if not cell.source.strip():
                    record.status = "skipped"
                    continue
                tags = set(cell.get("metadata", {}).get("tags", []) or [])
                if tags & set(self.policy.skip_tags):
                    record.status, record.message = "skipped", f"tagged {', '.join(sorted(tags & set(self.policy.skip_tags)))}"
                    continue
                if kernel is None:
                    if not first and not self._may_restart(deadline):
                        stopped = "not run: the kernel was lost and the restarts or the time are spent"
                        break
                    first = False
                    kernel = await self._fresh_kernel(replay, deadline)
                    if kernel is None:
                        stopped = "not run: the kernel could not be started"
                        break
                left = deadline - time.monotonic()
                if left <= 0:
                    stopped = f"not run: the notebook's time budget ({self.policy.notebook_timeout:g} s) is spent"
                    break
                budget.start_cell()
                outcome = await self._run_cell(kernel, position, cell, left, budget)
                budget.finish_cell(cell.outputs)
                cell.execution_count = kernel.executed
                self.timings["cells"] += outcome.seconds
                record.status, record.seconds, record.message = outcome.status, round(outcome.seconds, 3), \
                    outcome.message
                record.output_bytes, record.dropped_bytes = budget.cell + budget.protected, budget.dropped
                if outcome.status == "timeout" and left < self.policy.cell_timeout:
                    record.message += f" (the notebook's time budget of {self.policy.notebook_timeout:g} s)"
                if outcome.status in ("ok", "error"):
                    replay.append(position)
                if outcome.kernel_lost:
                    self._close(kernel)
                    kernel = None
        finally:
            if kernel is not None:
                self._close(kernel)
            if self.next_sandbox is not None:  # never used: the notebook has no code to run
                self.next_sandbox.close()
        for record in self.records:
            if record.status == "not_run" and stopped:
                record.message = stopped
        sandbox = self.sandbox
        return ExecutionResult(
            notebook=self.notebook, cells=self.records, seconds=round(time.monotonic() - started, 3),
            restarts=self.restarts, sandboxed=not self.unsandboxed,
            protections=sandbox.protections if sandbox else {}, unprotected=sandbox.unprotected if sandbox else [],
            timings={k: round(v, 3) for k, v in self.timings.items()},
            error="\n".join(self.problems) or None)
