"""A registered version's lineage, landed for the warehouse: the audit trail reaches it in SQL.

The training run records where a model came from as MLflow tags (``ml.train``: git commit,
training-data rows and SHA-256, dbt manifest hash, loan-book snapshot and contract). Tags are out of
SQL's reach, so when a version is registered its lineage is also landed as one ``model_lineage``
row; ``dlv_model_versions`` and ``audit_predictions`` join it to every decision the version made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ml.delivery import utc_now
from warehouse import datasets
from warehouse.paths import Paths

UNKNOWN = "unknown"

TAGS = ("git_commit", "training_data_sha256", "dbt_manifest_sha256", "loan_book_snapshot", "loan_book_contract")
"""The training run's tags copied as they are (``ml.train`` sets them); ``model_lineage`` names its columns alike."""


def lineage_row(version: str, run_id: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """The ``model_lineage`` row of ``version`` from its training run's tags (absent ones: unknown)."""
    rows = tags.get("training_data_rows")
    return {
        "model_version": version, "run_id": run_id,
        "training_data_rows": int(rows) if rows and rows.isdigit() else None,
        **{tag: tags.get(tag, UNKNOWN) for tag in TAGS},
        "registered_at": utc_now(),
    }


def land_lineage(paths: Paths, version: str, run_id: str) -> None:
    """Land ``version``'s lineage (read from its training run's tags)."""
    from mlflow import MlflowClient  # noqa: PLC0415 - about a second to import

    tags = MlflowClient().get_run(run_id).data.tags
    datasets.land_rows(paths, datasets.MODEL_LINEAGE, [lineage_row(version, run_id, tags)])
