"""Running dbt: the only writer of the warehouse file.

dbt runs as a child process (clean exit codes, no global state left in ours) with absolute paths in
its environment and the current loan-book contract as the ``loan_book`` var, so the same project
builds the simulator's book or a lender's own. Artifacts and logs go under the data directory, so
concurrent invocations (a build and a compile) never share a target folder.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warehouse.errors import LendguardError
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.settings import variable

log = logging.getLogger(__name__)


class DbtError(LendguardError):
    """dbt could not run, or reported failures; the message names what failed."""


@dataclass(frozen=True)
class DbtRun:
    """What one dbt invocation did."""

    returncode: int
    output: str
    results: tuple[dict[str, Any], ...]

    @property
    def failures(self) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in self.results if r.get("status") in {"error", "fail", "runtime error"})

    @property
    def warnings(self) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in self.results if r.get("status") == "warn")


def dbt_executable() -> str:
    """The dbt beside this interpreter (the project's venv), else the one on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(
    paths: Paths,
    args: list[str],
    dbt_vars: dict[str, Any] | None = None,
    *,
    target_path: Path | None = None,
    env_overrides: dict[str, str] | None = None,
) -> DbtRun:
    """Run ``dbt <args>`` against this deployment's warehouse; never raises on dbt's own failures."""
    target = target_path or paths.data_dir / "dbt" / "target"
    command = [
        dbt_executable(),
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(target),
        "--log-path", str(paths.data_dir / "dbt" / "logs"),
    ]
    if dbt_vars:
        command += ["--vars", json.dumps(dbt_vars)]
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    log.debug("running %s", " ".join(command))
    completed = subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env={**paths.dbt_env(), **(env_overrides or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    output = completed.stdout + completed.stderr
    return DbtRun(completed.returncode, output, _read_results(target / "run_results.json"))


def _read_results(path: Path) -> tuple[dict[str, Any], ...]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return ()
    return tuple(
        {
            "unique_id": r.get("unique_id"),
            "status": r.get("status"),
            "message": r.get("message"),
            "failures": r.get("failures"),
        }
        for r in raw.get("results", [])
    )


def compile_inline(paths: Paths, sql: str, dbt_vars: dict[str, Any]) -> str:
    """Render SQL that uses the project's macros (for example the feature definition).

    Compiles against an in-memory database and a private target folder, so it never touches the
    warehouse file or a build in progress.
    """
    with tempfile.TemporaryDirectory(prefix="lendguard-compile-") as tmp:
        run = run_dbt(
            paths,
            ["compile", "--inline", sql, "--output", "json", "--log-format", "text", "--quiet"],
            dbt_vars,
            target_path=Path(tmp),
            env_overrides={variable("paths.warehouse"): ":memory:"},
        )
    if run.returncode != 0:
        raise DbtError(f"dbt compile failed:\n{run.output.strip()}")
    try:
        return str(json.loads(run.output[run.output.index("{") :])["compiled"])
    except (ValueError, KeyError, IndexError) as exc:
        raise DbtError(f"unexpected dbt compile output:\n{run.output}") from exc
