"""Where everything lives: the path settings (``warehouse.settings.PathSettings``) resolved.

Every path can be moved by a setting so tests, CI and several deployments can run side by side;
the defaults keep all runtime data under ``warehouse/data/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from warehouse.settings import (
    PROJECT_DIR,
    EngineSettings,
    PathSettings,
    child_environment,
    get_settings,
    load_settings,
    variable,
)

__all__ = ["CHAMPION_MACROS_VARIABLE", "PROJECT_DIR", "Paths", "get_paths"]

CHAMPION_MACROS_VARIABLE = "LENDGUARD_CHAMPION_MACROS_DIR"
"""How dbt learns where the champion's macros are (``dbt_project.yml``'s macro-paths): lendguard sets
it for every dbt invocation from :attr:`Paths.champion_macros_dir`, so a build reads the state directory
of the deployment it builds, wherever that is. Not a setting: the state directory's place decides it."""


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
    engine: EngineSettings = field(default_factory=EngineSettings)
    """Which engine dbt builds on (``LENDGUARD_ENGINE``): dbt's profile target is named after it."""

    @classmethod
    def from_settings(cls, settings: PathSettings, engine: EngineSettings | None = None) -> Paths:
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
            engine=engine or EngineSettings(),
        )

    @property
    def spark_warehouse(self) -> Path:
        """Where a local Spark keeps the tables dbt-spark writes (``spark.sql.warehouse.dir``)."""
        return self.spark_dir / "warehouse"

    @property
    def spark_tables(self) -> Path:
        """The folder of the tables dbt-spark writes on a local Spark (the profile's schema)."""
        return self.spark_warehouse / f"{SPARK_SCHEMA}.db"

    @property
    def published(self) -> Path:
        """What readers read after a build: the DuckDB snapshot file, or on Spark the tables' folder
        (plain Parquet tables have no snapshot: the tables dbt-spark wrote are what is published)."""
        return self.spark_tables if self.engine.engine == "spark" else self.snapshot

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """The paths ``environ`` describes (default: this process's environment), uncached: for tests and tools."""
        settings = load_settings(environ)
        return cls.from_settings(settings.paths, settings.engine)

    @property
    def spark_dir(self) -> Path:
        """The local Spark session's tables (``warehouse``) and metastore (``metastore_db``)."""
        return self.data_dir / "spark"

    @property
    def champion_macros_dir(self) -> Path:
        """The champion's batch-scoring query as dbt macros (``ml.delivery.deploy_prod`` writes them
        on promotion): a macro path of the project, passed to dbt as :data:`CHAMPION_MACROS_VARIABLE`."""
        return self.state_dir / "champion" / "dbt"

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt process: absolute paths, so dbt's working directory does not matter,
        and the engine, which names the profile's target (``profiles.yml``)."""
        return child_environment({
            variable("paths.warehouse"): str(self.warehouse),
            variable("paths.landing"): str(self.landing),
            variable("paths.data_dir"): str(self.data_dir),
            CHAMPION_MACROS_VARIABLE: str(self.champion_macros_dir),
            variable("engine.engine"): self.engine.engine,
            variable("engine.spark_master"): self.engine.spark_master,
            variable("engine.spark_port"): str(self.engine.spark_port),
        })


SPARK_SCHEMA = "lendguard"
"""The schema (database) the ``spark`` target of ``profiles.yml`` writes its tables to."""


@cache
def get_paths() -> Paths:
    """The process-wide paths, derived from :func:`warehouse.settings.get_settings` (read once)."""
    settings = get_settings()
    return Paths.from_settings(settings.paths, settings.engine)
