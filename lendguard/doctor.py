"""``lendguard doctor``: is this machine ready to run lendguard? One check per prerequisite, each with
a one-line fix when it is not met.

Why a command: the first hour of a new user went to prerequisites found one at a time, minutes into
a run (Java when the pipeline exported PMML, a busy port after the whole pipeline, Chromium when the
browser test skipped). Each check here is quick and changes nothing; a failed one makes the command
exit non-zero, a warning does not (it concerns only part of the tool, e.g. the browser tests).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from lendguard.processes import PortInUseError, ensure_port_free
from warehouse.paths import Paths
from warehouse.settings import Settings, redact_uri, variable

OK, WARN, FAIL = "ok", "warn", "fail"
MIN_FREE_BYTES = 2 * 1024**3
"""Below this the demo's warehouse, snapshots and MLflow store (about 1 GB at 100,000 loans) may not fit."""
LOW_FREE_BYTES = 10 * 1024**3
"""Below this, a warning: a lender's book and months of prediction log take more."""
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
JAVA_TIMEOUT_SECONDS = 20.0
REGISTRY_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Check:
    """One prerequisite: its name, verdict (ok, warn, fail), what was found and, unless ok, the fix."""

    name: str
    status: str
    found: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def check_java() -> Check:
    """sklearn2pmml runs Java to export every trained model to PMML (pipeline stage train)."""
    fix = "install a Java runtime (11 or later), e.g. apt-get install -y default-jre-headless"
    java = shutil.which("java")
    if java is None:
        return Check("java", FAIL, "no java on PATH: training cannot export the model to PMML", fix)
    try:
        ran = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=JAVA_TIMEOUT_SECONDS,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("java", FAIL, f"{java} does not run: {exc}", fix)
    first = (ran.stderr or ran.stdout).strip().splitlines()[:1]
    if ran.returncode != 0:
        return Check("java", FAIL, f"{java} -version exited {ran.returncode}: {' '.join(first)}", fix)
    return Check("java", OK, f"{java}: {first[0] if first else 'runs'}")


def check_port(name: str, port: int, setting: str) -> Check:
    """A port a lendguard server will listen on: free, or already held by lendguard's own server."""
    fix = f"stop it or set {setting} to a free port"
    try:
        ensure_port_free(port, fix=fix)
    except PortInUseError as busy:
        if busy.holder_command and "lendguard" in busy.holder_command and " serve" in busy.holder_command:
            return Check(name, OK, f"port {port} is served by lendguard (pid {busy.holder_pid})")
        return Check(name, FAIL, str(busy).removesuffix(f": {fix}"), fix)
    return Check(name, OK, f"port {port} is free")


def check_disk(data_dir: Path) -> Check:
    """Free space where the data directory is (or will be)."""
    fix = f"free space there, or point {variable('paths.data_dir')} at a larger disk"
    free = shutil.disk_usage(_existing(data_dir)).free
    found = f"{free / 1024**3:,.1f} GB free for {data_dir}"
    if free < MIN_FREE_BYTES:
        return Check("disk space", FAIL, f"{found} (needs {MIN_FREE_BYTES / 1024**3:.0f} GB)", fix)
    if free < LOW_FREE_BYTES:
        return Check("disk space", WARN, f"{found}: enough for the demo, tight for a lender's book", fix)
    return Check("disk space", OK, found)


def check_chromium() -> Check:
    """Headless Chromium renders the dashboard in the browser test; nothing else needs it."""
    found = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if found is None:
        return Check("chromium", WARN, "no chromium on PATH: the browser test is skipped (nothing else needs it)",
                     "apt-get install -y chromium chromium-driver")
    return Check("chromium", OK, found)


def check_data_dir(data_dir: Path) -> Check:
    """The data directory (or the directory it will be created in) must take new files."""
    target = data_dir if data_dir.exists() else _existing(data_dir)
    fix = f"make it writable by this user (chown/chmod), or set {variable('paths.data_dir')} elsewhere"
    if not target.is_dir():
        return Check("data directory", FAIL, f"{target} is not a directory", fix)
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        return Check("data directory", FAIL, f"cannot create files in {target}: {exc.strerror}", fix)
    state = "exists" if target == data_dir else f"will be created in {target}"
    return Check("data directory", OK, f"{data_dir} {state}, writable")


def check_mlflow(tracking_uri: str) -> Check:
    """The MLflow tracking store: a SQLite file that opens, or a tracking server that answers."""
    scheme = urlsplit(tracking_uri).scheme
    if scheme == "sqlite":
        return _check_sqlite_store(tracking_uri)
    if scheme in {"http", "https"}:
        return _check_tracking_server(tracking_uri)
    setting = variable("paths.tracking_uri")
    return Check("mlflow store", WARN, f"{redact_uri(tracking_uri)}: a {scheme or 'local'} store, not checked here",
                 f"check it with the MLflow client, or use sqlite:/// or http(s):// in {setting}")


def _check_sqlite_store(tracking_uri: str) -> Check:
    database = Path(tracking_uri.removeprefix("sqlite:///").removeprefix("sqlite://"))
    fix = f"make {database.parent} writable, or set {variable('paths.tracking_uri')} to another store"
    if not database.exists():
        folder = _existing(database.parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            return Check("mlflow store", FAIL, f"{tracking_uri}: {folder} is not writable", fix)
        return Check("mlflow store", OK, f"{tracking_uri}: created on first use ({folder} is writable)")
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as con:
            tables = con.execute("select count(*) from sqlite_master where type = 'table'").fetchone()[0]
    except sqlite3.Error as exc:
        return Check("mlflow store", FAIL, f"{tracking_uri}: {exc}", fix)
    return Check("mlflow store", OK, f"{tracking_uri}: opens ({tables} tables)")


def _check_tracking_server(tracking_uri: str) -> Check:
    shown = redact_uri(tracking_uri)
    fix = f"start the tracking server (mlflow server ...), or correct {variable('paths.tracking_uri')}"
    try:
        answer = httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=REGISTRY_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        return Check("mlflow store", FAIL, f"{shown} does not answer: {type(exc).__name__}", fix)
    if answer.status_code != 200:
        return Check("mlflow store", FAIL, f"{shown}/health answers {answer.status_code}", fix)
    return Check("mlflow store", OK, f"{shown} answers")


def _existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    return next(candidate for candidate in (path, *path.parents) if candidate.exists())


def run_checks(settings: Settings, paths: Paths) -> list[Check]:
    """Every check, in the order a new user meets them."""
    checks: list[Callable[[], Check]] = [
        check_java,
        lambda: check_port("api port", settings.api.port, variable("api.port")),
        lambda: check_port("dev api port", settings.pipeline.dev_api_port, variable("pipeline.dev_api_port")),
        lambda: check_data_dir(paths.data_dir),
        lambda: check_disk(paths.data_dir),
        lambda: check_mlflow(paths.tracking_uri),
        check_chromium,
    ]
    return [check() for check in checks]
