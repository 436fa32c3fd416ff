"""Where everything lives: the path settings (``warehouse.settings.PathSettings``) resolved.

Every path can be moved by a setting so tests, CI and several deployments can run side by side;
the defaults keep all runtime data under ``warehouse/data/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from warehouse.settings import PROJECT_DIR, PathSettings, child_environment, get_settings, load_settings, variable

__all__ = ["PROJECT_DIR", "Paths", "get_paths"]


@dataclass(frozen=True)
class Paths:
    """Locations of the warehouse file, its published snapshot, the landing zone and MLflow."""

    data_dir: Path
    warehouse: Path
    snapshot: Path
    landing: Path
    mlflow_dir: Path
    tracking_uri: str = field(repr=False)  # it may hold credentials
    state_dir: Path

    @classmethod
    def from_settings(cls, settings: PathSettings) -> Paths:
        """Absolute paths; the unset ones derived from the data directory."""
        data_dir = settings.data_dir.resolve()
        mlflow_dir = data_dir / "mlflow"
        tracking_uri = settings.tracking_uri.get_secret_value() if settings.tracking_uri else None
        return cls(
            data_dir=data_dir,
            warehouse=(settings.warehouse or data_dir / "lendguard.duckdb").resolve(),
            snapshot=(settings.snapshot or data_dir / "published" / "lendguard.duckdb").resolve(),
            landing=(settings.landing or data_dir / "landing").resolve(),
            mlflow_dir=mlflow_dir,
            tracking_uri=tracking_uri or f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            state_dir=data_dir / "state",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """The paths ``environ`` describes (default: this process's environment), uncached: for tests and tools."""
        return cls.from_settings(load_settings(environ).paths)

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt process: absolute paths, so dbt's working directory does not matter."""
        return child_environment({
            variable("paths.warehouse"): str(self.warehouse),
            variable("paths.landing"): str(self.landing),
        })


@cache
def get_paths() -> Paths:
    """The process-wide paths, derived from :func:`warehouse.settings.get_settings` (read once)."""
    return Paths.from_settings(get_settings().paths)
