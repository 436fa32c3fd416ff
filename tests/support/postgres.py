"""A throwaway PostgreSQL cluster and an ``mlflow server`` on it: the production MLflow set-up
(README, "MLflow in production"), started the way a team would, on free local ports.

PostgreSQL refuses to run as root, so under root (CI machines) the cluster belongs to ``nobody``
and lives in a temporary directory of its own (pytest's base temp is private to root). Without the
server binaries the tests that need it are skipped, saying what to install.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lendguard.processes import log_tail
from tests.support.servers import free_port, wait_for

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
"""Where Debian's postgresql packages put initdb and pg_ctl (not on PATH)."""
TOOLS = ("initdb", "pg_ctl", "createdb")
UNPRIVILEGED_USER = "nobody"
DATABASE = "mlflow"
ROLE = "lendguard"


@dataclass(frozen=True)
class PostgresCluster:
    url: str
    """SQLAlchemy URL of the cluster's ``mlflow`` database (trust authentication, local only). The driver is
    named: SQLAlchemy 2.1's default for ``postgresql://`` is psycopg 3, and psycopg2 is the one installed."""
    directory: Path


@dataclass(frozen=True)
class MlflowServer:
    url: str
    """The tracking URI clients use (``http://127.0.0.1:PORT``)."""
    artifacts: Path
    """The server's artifact root (``--artifacts-destination``): clients upload through the server."""


def postgres_bin() -> Path | None:
    """The directory holding initdb, pg_ctl and createdb: on PATH, else the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name),
                         reverse=True)
    return next((folder for folder in candidates if all((folder / tool).exists() for tool in TOOLS)), None)


def _as_cluster_owner(command: list[str]) -> list[str]:
    """``command`` run as the unprivileged user when this process is root (initdb refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_cluster_owner(command), cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    """initdb a cluster in a temporary directory, start it on a free port, create the database;
    stop and remove it all afterwards."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package")
    directory = Path(tempfile.mkdtemp(prefix="lendguard-postgres-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    data, port = directory / "data", free_port()
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-sync"],
             cwd=directory)
        # Only TCP on 127.0.0.1, the socket in the cluster's own directory; no durability needed.
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {directory} -c fsync=off"
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(directory / "postgres.log"), "-o", options,
              "-w", "-t", "60", "start"], cwd=directory)
        try:
            _run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, DATABASE],
                 cwd=directory)
            yield PostgresCluster(f"postgresql+psycopg2://{ROLE}@127.0.0.1:{port}/{DATABASE}", directory)
        finally:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], cwd=directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def mlflow_server(cluster: PostgresCluster, root: Path) -> Iterator[MlflowServer]:
    """``mlflow server`` with its backend store on ``cluster`` and its artifact root under ``root``,
    served through the server (``--serve-artifacts``), as README's production set-up says."""
    artifacts, log_path, port = root / "mlflow-artifacts", root / "mlflow-server.log", free_port()
    artifacts.mkdir(parents=True)
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", cluster.url,
        "--artifacts-destination", artifacts.as_uri(), "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    # lendguard uses no MLflow jobs (GenAI evaluation): without the job runner the server starts with
    # one process less competing for the test machine's cores.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log_path.open("ab") as sink:
        # A session of its own: `mlflow server` runs uvicorn as a child, and both are stopped as a group.
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"mlflow server ended ({process.returncode}); its log ends with:\n{log_tail(log_path)}")
        try:
            return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # Its first start creates the schema on PostgreSQL (alembic migrations): seconds, not minutes.
        # A deadline, not a speed goal: on two busy cores the server took up to two minutes to answer.
        wait_for(healthy, timeout=300, what="mlflow server answering /health")
        yield MlflowServer(url, artifacts)
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not ended within a minute."""
    for stop in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, stop)
        try:
            process.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            continue
