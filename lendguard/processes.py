"""Starting a server process and waiting until it is ready: the one way lendguard, its tests and
its benchmarks do it.

The port is checked first, so a server already listening there cannot answer the readiness probe
in the new one's place (the one-line error names the process holding the port, from /proc, so the
user knows what to stop); then ``GET /readyz`` is polled until it answers. When the process exits
or never becomes ready, it is stopped and the error carries the last lines of its log, so the
reason is on screen instead of in a file somewhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from warehouse.errors import LendguardError
from warehouse.settings import child_environment

LOCALHOST = "127.0.0.1"
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, never bound
READY_PATH = "/readyz"
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 20
TCP_LISTEN = "0A"
"""The LISTEN state in /proc/net/tcp."""


class PortInUseError(LendguardError):
    """Something already listens on the port a server was to use; ``holder_pid`` and ``holder_command``
    are its process and command line, when known."""

    def __init__(self, message: str, *, holder_pid: int | None, holder_command: str | None = None) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid
        self.holder_command = holder_command


class ServerStartError(LendguardError):
    """A server process exited or did not become ready; the message ends with its last log lines."""


@dataclass(frozen=True)
class ServerProcess:
    """A started, ready server: where it answers, its process and the file its output goes to."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM (the server drains and flushes its log), SIGKILL after ``timeout``; the exit status."""
        return stop_process(self.process, timeout)


def serve_command(port: int, alias: str | None = None) -> list[str]:
    """``lendguard serve`` on ``port`` in this interpreter (the API, as production runs it)."""
    return [sys.executable, "-m", "lendguard.cli", "serve", "--port", str(port),
            *([] if alias is None else ["--alias", alias])]


def ensure_port_free(port: int, host: str = LOCALHOST, *, fix: str = "stop it or choose another port") -> None:
    """PortInUseError, naming the port and what holds it, when something already listens on ``host:port``.

    ``fix`` ends the message: how this command's user picks another port. A server binding every
    interface (``0.0.0.0``, ``::``) is probed on this host's loopback.
    """
    with socket.socket() as probe:
        probe.settimeout(1.0)
        if probe.connect_ex((LOCALHOST if host in WILDCARD_HOSTS else host, port)) != 0:
            return
    holder = port_holder(port)
    named = ("another process" if holder is None
             else f"pid {holder[0]}" + (f" ({_shortened(holder[1])})" if holder[1] else ""))
    raise PortInUseError(f"port {port} is already in use by {named}: {fix}",
                         holder_pid=None if holder is None else holder[0],
                         holder_command=None if holder is None else holder[1])


def port_holder(port: int) -> tuple[int, str] | None:
    """The process listening on TCP ``port`` and its command line, when /proc says so (Linux, a process
    this user may inspect); None otherwise."""
    inodes = _listening_inodes(port)
    proc = Path("/proc")
    if inodes and proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
                if any(str(fd.readlink()) in inodes for fd in (entry / "fd").iterdir()):
                    words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
                    return int(entry.name), " ".join(words)
    return None


def _listening_inodes(port: int) -> set[str]:
    """``socket:[inode]`` links of the sockets listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        with contextlib.suppress(OSError):
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port and inode != "0":
                    found.add(f"socket:[{inode}]")
    return found


def _shortened(command: str, limit: int = 120) -> str:
    return command if len(command) <= limit else command[: limit - 1] + "…"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when there is none)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_server(
    command: Sequence[str], *, port: int, log_path: Path, env: Mapping[str, str] | None = None,
    name: str = "the server", host: str = LOCALHOST, timeout: float = READY_TIMEOUT_SECONDS,
    ready_statuses: Collection[int] = (200,), new_session: bool = False,
) -> ServerProcess:
    """Run ``command`` (a server that will listen on ``host:port``) and return once it is ready.

    ``env`` is set over this process's environment (which the server inherits). Its stdout and
    stderr are appended to ``log_path``. ``new_session`` detaches it from this
    process's session, for a server that must outlive the command that started it (the dev API)
    or that a test kills with its whole process group. Raises PortInUseError before starting
    anything when the port is taken, ServerStartError (after stopping the process) when it exits
    or is not ready within ``timeout`` seconds.
    """
    ensure_port_free(port, host)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as sink:
        process = subprocess.Popen(
            list(command), stdout=sink, stderr=subprocess.STDOUT,
            env=child_environment(env or {}), start_new_session=new_session,
        )
    url = f"http://{host}:{port}"
    try:
        wait_until_ready(url, alive=lambda: process.poll() is None, timeout=timeout, ready_statuses=ready_statuses)
    except ServerStartError as exc:
        stop_process(process)
        tail = log_tail(log_path)
        raise ServerStartError(f"{name} on port {port}: {exc}; {log_path} ends with:\n{tail}"
                               if tail else f"{name} on port {port}: {exc}; {log_path} is empty") from None
    return ServerProcess(url, process, log_path)


def wait_until_ready(
    url: str, *, alive: Callable[[], bool], timeout: float = READY_TIMEOUT_SECONDS,
    ready_statuses: Collection[int] = (200,), poll_seconds: float = 0.25,
) -> None:
    """Poll ``url``'s readiness probe until it answers one of ``ready_statuses``; ServerStartError
    when ``alive()`` turns false (the server ended) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ServerStartError("it ended before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{READY_PATH}", timeout=1.0).status_code in ready_statuses:
                return
        time.sleep(poll_seconds)
    raise ServerStartError(f"it was not ready within {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """Terminate ``process``, kill it if it has not ended after ``timeout`` seconds; its exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Terminate the process ``pid`` (started by this or an earlier command) and wait until it ended."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.25)


def _exited(pid: int) -> bool:
    """Whether ``pid`` has ended (reaping it when it is our own child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: probe it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return done == pid
