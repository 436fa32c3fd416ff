"""Where everything lives. One frozen settings object, read from the environment once.

Every path can be moved by an environment variable so tests, CI and several deployments can run
side by side; the defaults keep all runtime data under ``warehouse/data/`` (git-ignored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
"""The repository root: holds ``dbt_project.yml`` and ``profiles.yml``."""

DBT_PROFILE_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}


@dataclass(frozen=True)
class Paths:
    """Locations of the warehouse file, its published snapshot, the landing zone and MLflow."""

    data_dir: Path
    warehouse: Path
    snapshot: Path
    landing: Path
    mlflow_dir: Path
    tracking_uri: str
    state_dir: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("LENDGUARD_DATA_DIR", PROJECT_DIR / "warehouse" / "data")).resolve()
        mlflow_dir = data_dir / "mlflow"
        return cls(
            data_dir=data_dir,
            warehouse=Path(env.get("LENDGUARD_WAREHOUSE", data_dir / "lendguard.duckdb")).resolve(),
            snapshot=Path(env.get("LENDGUARD_SNAPSHOT", data_dir / "published" / "lendguard.duckdb")).resolve(),
            landing=Path(env.get("LENDGUARD_LANDING", data_dir / "landing")).resolve(),
            mlflow_dir=mlflow_dir,
            tracking_uri=env.get("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_dir / 'mlflow.db'}"),
            state_dir=data_dir / "state",
        )

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt process: absolute paths, so dbt's working directory does not matter."""
        return {
            **os.environ,
            **DBT_PROFILE_ENV,
            "LENDGUARD_WAREHOUSE": str(self.warehouse),
            "LENDGUARD_LANDING": str(self.landing),
        }


@cache
def get_paths() -> Paths:
    """The process-wide paths (cached: the environment is read once)."""
    return Paths.from_env()
