"""Drive JupyterLab the way a student does: a real server, headless Chromium, Playwright over CDP.

* :func:`start_lab` runs the kit's ``make lab`` on a free loopback port with a token;
* :func:`start_chromium` starts Debian's ``chromium`` with a remote-debugging port (no browser download);
* :class:`Notebook` acts on one open notebook through the UI (file browser, toolbar, menus, the cell
  editor, the Validate button) and waits on the server's ``/api/kernels`` execution state, which,
  unlike the status bar, does not say "Idle" while cells are still queued;
* :func:`stop_tree` ends a process and every process it started (kernels included), and says which
  survived.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium_path() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _spawn(command: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """Start ``command`` in its own session (so that it and its children can be ended together)."""
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)


def stop_tree(process: subprocess.Popen, grace: float = 10.0) -> list[str]:
    """End ``process`` and all its descendants (SIGTERM, then SIGKILL after ``grace`` seconds); return a
    description of each process still alive afterwards (none, normally)."""
    try:
        root = psutil.Process(process.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        try:
            member.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=grace)
    for member in alive:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(alive, timeout=5)
    if process.poll() is None:
        process.wait(timeout=5)
    return [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in alive if p.is_running()]


@dataclass
class Lab:
    process: subprocess.Popen
    url: str
    token: str
    log: Path

    def api(self, path: str, method: str = "GET", body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
        return json.loads(text) if text else None

    def status(self, path: str) -> int:
        """The HTTP status of an authenticated GET of ``path``."""
        try:
            request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    def kernel_state(self, notebook_path: str) -> str | None:
        """``execution_state`` of the kernel of the session whose path is ``notebook_path`` (or None)."""
        for session in self.api("/api/sessions"):
            if session["path"] == notebook_path and session.get("kernel"):
                return self.api(f"/api/kernels/{session['kernel']['id']}")["execution_state"]
        return None

    def shut_down_kernels(self) -> None:
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_lab(kit: Path, environment: Path, workdir: Path, env: dict[str, str], timeout: float = 180) -> Lab:
    """``make lab`` in the kit (as a student runs it) on a free loopback port with a token, with Jupyter's
    user folders and JupyterLab's settings in ``workdir`` (never the machine's own ~/.jupyter)."""
    port, token = free_port(), secrets.token_hex(16)
    folders = {name: workdir / name for name in ("config", "data", "runtime", "settings", "workspaces")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    _write_test_settings(folders["settings"])
    lab_args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
                f"--IdentityProvider.token={token}")
    environ = dict(os.environ, JUPYTER_CONFIG_DIR=str(folders["config"]), JUPYTER_DATA_DIR=str(folders["data"]),
                   JUPYTER_RUNTIME_DIR=str(folders["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(folders["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(folders["workspaces"]), **env)
    log = workdir / "lab.log"
    process = _spawn(["make", "lab", f"VENV={environment}", f"LAB_ARGS={lab_args}"], log, cwd=kit, env=environ)
    lab = Lab(process, f"http://127.0.0.1:{port}", token, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make lab exited ({process.returncode}):\n{lab.log_text()[-3000:]}")
        try:
            lab.api("/api/status")
            return lab
        except OSError:
            time.sleep(0.5)
    stop_tree(process)
    raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{lab.log_text()[-3000:]}")


def _write_test_settings(folder: Path) -> None:
    """Every cell kept in the page (no windowing), and no news or update pop-ups over the notebook."""
    settings = {
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def start_chromium(workdir: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """Headless Chromium with a remote-debugging port on loopback; returns (process, CDP endpoint)."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    port = free_port()
    profile = workdir / "chromium-profile"
    command = [executable, "--headless=new", f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
               "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
               f"--user-data-dir={profile}", "about:blank"]
    process = _spawn(command, workdir / "chromium.log")
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited ({process.returncode}): {(workdir / 'chromium.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{endpoint}/json/version", timeout=5).read()
            return process, endpoint
        except OSError:
            time.sleep(0.3)
    stop_tree(process)
    raise TimeoutError(f"chromium did not open its debugging port within {timeout} s")


# An error output, as IPython renders it (JupyterLab shows errors and stderr with the same mime type).
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception|Interrupt)\b", re.M)
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


@dataclass
class CellReport:
    index: int
    grade_id: str | None
    source_head: str
    prompt: str
    outputs: str

    def describe(self) -> str:
        name = f"cell {self.index}" + (f" ({self.grade_id})" if self.grade_id else "")
        return f"{name} `{self.source_head}`:\n{self.outputs.strip()[-1500:]}"


class Notebook:
    """One notebook open in JupyterLab; ``cells`` are the notebook's cells (nbformat), in page order."""

    def __init__(self, page, lab: Lab, path: str, cells: list):
        self.page, self.lab, self.path, self.cells = page, lab, path, cells
        self.panel = page.locator(".jp-NotebookPanel:visible")

    # -- opening ---------------------------------------------------------------------------------------
    @classmethod
    def open_from_file_browser(cls, page, lab: Lab, path: str, cells: list, timeout: float = 120) -> "Notebook":
        """Double-click each folder of ``path`` in the file browser, then the notebook; wait for its kernel."""
        page.locator(".jp-BreadCrumbs-home").click()
        for part in path.split("/"):
            item = page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=re.compile(
                rf"^{re.escape(part)}$")))
            item.dblclick()
        notebook = cls(page, lab, path, cells)
        notebook.panel.locator(".jp-Cell").first.wait_for(timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while (shown := notebook.cell_elements().count()) != len(cells):  # cells are added as they render
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {shown} cells in the page, {len(cells)} in the file")
            time.sleep(0.2)
        notebook.wait_until_idle(timeout)
        return notebook

    # -- cells -----------------------------------------------------------------------------------------
    def cell_elements(self):
        return self.panel.locator(".jp-Notebook .jp-Cell")

    def cell(self, index: int):
        return self.cell_elements().nth(index)

    def index_of(self, grade_id: str) -> int:
        for index, cell in enumerate(self.cells):
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                return index
        raise KeyError(f"{self.path}: no cell with grade_id {grade_id!r}")

    def set_source(self, index: int, code: str) -> None:
        """Replace cell ``index``'s text as a student pastes it: click into its editor, select all, paste."""
        editor = self.cell(index).locator(".jp-InputArea-editor .cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.insert_text(code)
        self.page.keyboard.press("Escape")

    def run_cells(self, *indices: int, timeout: float = 120) -> None:
        """Run each cell with Shift+Enter from its editor, waiting for the kernel after each."""
        for index in indices:
            self.cell(index).locator(".jp-InputArea-editor .cm-content").click()
            self.page.keyboard.press("Shift+Enter")
            self.wait_until_idle(timeout)

    def prompt(self, index: int) -> str:
        return self.cell(index).locator(".jp-InputPrompt").first.inner_text().strip()

    def output_text(self, index: int) -> str:
        return "\n".join(self.cell(index).locator(".jp-OutputArea-output").all_inner_texts())

    def report(self, index: int) -> CellReport:
        cell = self.cells[index]
        head = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
        return CellReport(index, cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"), head[:80],
                          self.prompt(index) if cell.cell_type == "code" else "", self.output_text(index))

    def code_cells(self) -> list[int]:
        return [i for i, cell in enumerate(self.cells) if cell.cell_type == "code"]

    def errors(self) -> list[CellReport]:
        """Code cells whose rendered output shows an error (a traceback on the error/stderr output)."""
        failing = [i for i in self.code_cells()
                   if any(TRACEBACK.search(text) for text in self.cell(i).locator(STDERR).all_inner_texts())]
        return [self.report(i) for i in failing]

    def show(self, index: int, outputs: bool = False) -> None:
        """Scroll cell ``index`` (or its outputs) to the top of the notebook (for a screenshot)."""
        target = self.cell(index).locator(".jp-Cell-outputWrapper") if outputs else self.cell(index)
        target.evaluate("node => node.scrollIntoView({block: 'start'})")

    def images(self, index: int) -> int:
        return self.cell(index).locator(".jp-OutputArea-output img").count()

    # -- toolbar and menus -----------------------------------------------------------------------------
    def menu(self, menu: str, command: str) -> None:
        self.page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
        self.page.locator(f".lm-Menu:visible .lm-Menu-item[data-command='{command}']").first.click()

    def restart_and_run_all(self, timeout: float) -> float:
        """Clear all outputs, then Kernel > Restart Kernel and Run All Cells; wait until every queued cell
        ran (or run-all stopped at an error); return the seconds it took."""
        self.menu("Edit", "editmenu:clear-all")
        start = time.monotonic()
        self.menu("Kernel", "runmenu:restart-and-run-all")
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        first_code = self.code_cells()[0]
        self.wait_until_idle(timeout, started=lambda: re.fullmatch(r"\[\d+\]:", self.prompt(first_code)) is not None)
        return time.monotonic() - start

    def wait_until_idle(self, timeout: float, started=lambda: True) -> None:
        """Wait until ``started()`` holds, no cell is queued or running (``[*]``), and the server reports
        the notebook's kernel idle, twice in a row."""
        deadline, calm = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            busy = (self.panel.locator(".jp-InputPrompt", has_text="[*]").count() > 0
                    or self.lab.kernel_state(self.path) != "idle" or not started())
            calm = 0 if busy else calm + 1
            if calm >= 2:
                return
            time.sleep(0.3)
        running = [self.report(i).describe() for i in self.code_cells() if self.prompt(i) == "[*]:"]
        raise TimeoutError(f"{self.path}: still running after {timeout:.0f} s; running or queued: {running[:1]}")

    def save(self, timeout: float = 30) -> None:
        """Ctrl+S; wait until the tab no longer shows unsaved changes."""
        self.page.keyboard.press("ControlOrMeta+s")
        self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached",
                                                                                  timeout=timeout * 1000)

    def validate(self, timeout: float = 300) -> str:
        """Press nbgrader's Validate button; return the text of the "Validation Results" dialog (left open)."""
        self.panel.locator("jp-button.validate-button").click()
        dialog = self.page.locator(".jp-Dialog")
        dialog.wait_for(timeout=timeout * 1000)
        dialog.locator(".jp-Dialog-header", has_text=re.compile("Validation")).wait_for(timeout=timeout * 1000)
        return dialog.locator(".jp-Dialog-body").inner_text()

    def scroll_dialog_to_end(self) -> None:
        """Scroll the open dialog to its last line (where an error's message is), at its left edge."""
        self.page.locator(".jp-Dialog-body").evaluate("body => { body.scrollTop = body.scrollHeight; body.scrollLeft = 0; }")

    def close_dialog(self) -> None:
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        self.page.locator(".jp-Dialog").wait_for(state="detached")

    def close(self) -> None:
        """Save and close the notebook's tab, and shut its kernel down."""
        self.save()
        self.menu("File", "application:close-all")
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            dialog.locator("button", has_text=re.compile("Save|Discard")).first.click()
        self.lab.shut_down_kernels()
