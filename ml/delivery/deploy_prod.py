"""Stage ``deploy-prod``: an approved version becomes the champion, everywhere it is used.

Consumes an approved version. Produces the registry aliases (``champion`` on it, the previous
champion kept as ``previous_champion``, the failover fallback), the champion's PMML compiled to
SQL where ``lendguard build`` reads it (``score_loans``), and, when the production API's address
is known, the confirmation that it serves the version (it switches at its next alias poll,
without a restart).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import httpx

from ml import registry
from ml.delivery import CHAMPION, PREVIOUS_CHAMPION
from warehouse.paths import Paths

CHAMPION_SQL_KEEP = ("loan_id", "fairness_group")


def champion_sql_dir(paths: Paths) -> Path:
    return paths.state_dir / "champion"


def install_champion_sql(paths: Paths, version: str) -> Path:
    """Compile the champion's PMML for batch scoring in the warehouse and put it where builds read it.

    ``lendguard build`` hands the file to dbt (``score_loans``); builds never need the registry.
    The query reads ``model_features`` (``feat_loans``) and keeps the loan id and group.
    """
    import mlflow  # noqa: PLC0415 - about a second to import

    from ml.export.sql import compile_pmml, to_sql  # noqa: PLC0415 - sqlglot and the PMML reader, only here

    registry.connect(paths)
    run_id = registry.load_version_run_id(paths, version)
    pmml = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{registry.BUNDLE_DIR}/model.pmml"))
    query = compile_pmml(pmml, relation=registry.MODEL_FEATURES_RELATION, keep=list(CHAMPION_SQL_KEEP))
    folder = champion_sql_dir(paths)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".model.duckdb.sql.tmp"
    tmp.write_text(to_sql(query, "duckdb"))
    tmp.replace(folder / "model.duckdb.sql")
    (folder / "version").write_text(version)
    return folder / "model.duckdb.sql"


def promote(paths: Paths, version: str) -> None:
    """Move ``champion`` to ``version`` (the one it leaves keeps ``previous_champion``) and install
    its SQL for the warehouse's batch scoring."""
    current = registry.alias_version(paths, CHAMPION)
    if current is not None and current != version:
        registry.set_alias(paths, PREVIOUS_CHAMPION, current)
    registry.set_alias(paths, CHAMPION, version)
    install_champion_sql(paths, version)


def wait_for_serving(url: str, version: str, timeout: float, poll_seconds: float = 1.0) -> str | None:
    """Poll the API at ``url`` until its ``/readyz`` reports ``version``; the version it last
    reported (None when it never answered) once ``timeout`` seconds pass."""
    deadline, serving = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            serving = str(httpx.get(f"{url}/readyz", timeout=2.0).json().get("model_version"))
            if serving == version:
                return serving
        time.sleep(poll_seconds)
    return serving
