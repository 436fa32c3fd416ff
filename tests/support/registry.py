"""More versions of a registered model, for tests that move aliases between versions."""

from __future__ import annotations

import dataclasses
from typing import Any

from ml import registry
from ml.policy import PolicySet
from ml.registry import MODEL_NAME, ModelBundle, load_version
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import Paths


def register_variant(
    paths: Paths, base_version: str, *, policy: dict[str, Any] | None = None, loan_book: LoanBookSchema | None = None
) -> str:
    """A new version of ``base_version``'s fitted model (same pipeline and compiled SQL) whose bundle
    has another policy or loan-book contract; returns the new version."""
    import mlflow  # MLflow takes seconds to import: only the tests that register pay for it
    from mlflow import MlflowClient

    base = load_version(paths, base_version)
    registry.configure(paths)
    client = MlflowClient()
    source = client.get_model_version(MODEL_NAME, base_version)
    with mlflow.start_run(run_name=f"test: variant of version {base_version}") as run:
        registry.log_bundle_files(base.feature_sql, loan_book or base.loan_book, policy or base.policy)
        if base.model_sql:  # the same fitted model, so the same compiled SQL
            mlflow.log_text(base.model_sql, f"{registry.BUNDLE_DIR}/{registry.MODEL_SQL_FILE}")
    # A tracking server accepts a `models:/<model id>` source only with that model id, which its
    # answer for the source version may leave out: read it from the source then.
    logged_model = source.source.removeprefix("models:/") if source.source.startswith("models:/m-") else None
    created = client.create_model_version(
        MODEL_NAME, source.source, run_id=run.info.run_id, model_id=getattr(source, "model_id", None) or logged_model
    )
    return str(created.version)


def scaled_policy(bundle: ModelBundle, factor: float) -> dict[str, Any]:
    """The bundle's policies with every threshold multiplied by ``factor``."""
    policies = bundle.policies
    return PolicySet(policies.deployed, {
        name: dataclasses.replace(
            policy, thresholds={g: t * factor for g, t in policy.thresholds.items()},
            default_threshold=policy.default_threshold * factor,
        )
        for name, policy in policies.policies.items()
    }).to_dict()
