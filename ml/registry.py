"""The MLflow registry: where every model version, its artifacts and its aliases live.

A version is a *bundle*: the fitted scikit-learn pipeline, the compiled feature SQL it expects its
inputs from, the loan-book contract and the decision policy. The API loads a bundle by alias
(``champion``), so what it serves is exactly what was registered.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import tempfile
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ml.policy import PolicySet
from warehouse.errors import LendguardError
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import Paths

log = logging.getLogger(__name__)

MODEL_NAME = "lendguard"
EXPERIMENT = "lendguard"
BUNDLE_DIR = "bundle"
FEATURE_SQL_FILE = "feature.sql"
LOAN_BOOK_FILE = "loan_book.yml"
POLICY_FILE = "policy.json"
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    # hist_gradient_boosting: the fitted trees (``HistGradientBoostingClassifier._predictors``).
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # lightgbm: the estimator, its booster (restored from LightGBM's own text model format, not
    # pickled code) and the ordered dict its parameters live in.
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
]
"""Types our pipelines hold that skops (MLflow's no-pickle format) does not trust by default: every
family of ``ml.candidates.FAMILIES`` needs its own listed, or its versions cannot be registered
(MLflow loads the saved model back with this list, and refuses it on any other type)."""
MODEL_RUNTIME_PACKAGES = ("mlflow", "skops", "numpy", "scipy", "pandas")
"""What loading a logged model and scoring with it needs besides the packages its own classes come
from: MLflow's loader, skops (the no-pickle format), the array and frame libraries scikit-learn
predicts with."""
FEATURE_RELATION = "application_rows"
"""The relation name the compiled feature SQL selects from."""
MODEL_FEATURES_RELATION = "model_features"
"""The relation the compiled model SQL reads: one row per application, the model's features."""


def model_sql_file(dialect: str) -> str:
    """The bundle file holding the version's model compiled to ``dialect`` (``ml.train``)."""
    return f"model.{dialect}.sql"


MODEL_SQL_FILE = model_sql_file("duckdb")


class ModelNotFoundError(LendguardError):
    """No version carries the requested alias (or the registry is unreachable)."""


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to score an application the way the registered version was trained."""

    name: str
    version: str
    run_id: str
    alias: str
    pipeline: Any
    feature_sql: str
    loan_book: LoanBookSchema
    policy: dict[str, Any]
    model_sql: str | None = None
    """The model compiled to DuckDB SQL over ``model_features``; None for a version logged without one."""
    registered_at: datetime | None = None
    """When the version was registered (naive UTC): the API's default horizon for ``occurred_at``."""

    @cached_property
    def policies(self) -> PolicySet:
        """Parsed once per loaded bundle: the API asks for a threshold on every request."""
        return PolicySet.from_dict(self.policy)

    def threshold_for(self, group: str | None) -> float:
        """The threshold the deployed policy applies to an applicant of ``group``."""
        return self.policies.threshold_for(group)


def connect(paths: Paths) -> None:
    """Point MLflow at this deployment's tracking store (no writes)."""
    import mlflow  # noqa: PLC0415 - importing mlflow costs about a second; only pay it when used

    if paths.tracking_uri.startswith("sqlite:///"):
        paths.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(paths.tracking_uri)
    mlflow.set_registry_uri(paths.tracking_uri)


def configure(paths: Paths) -> None:
    """Connect, and make sure the experiment runs are logged to exists."""
    import mlflow  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)

    connect(paths)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (paths.mlflow_dir / "artifacts").as_uri() if paths.tracking_uri.startswith("sqlite") else None
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(EXPERIMENT)


def log_bundle_files(
    feature_sql: str | None = None, loan_book: LoanBookSchema | None = None, policy: dict[str, Any] | None = None
) -> None:
    """Log (some of) the bundle's files as artifacts of the active run; stages add theirs."""
    import mlflow  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if feature_sql is not None:
            (folder / FEATURE_SQL_FILE).write_text(feature_sql)
        if loan_book is not None:
            (folder / LOAN_BOOK_FILE).write_text(yaml.safe_dump(loan_book.to_dict(), sort_keys=False))
        if policy is not None:
            (folder / POLICY_FILE).write_text(json.dumps(policy, indent=2, sort_keys=True))
        mlflow.log_artifacts(str(folder), artifact_path=BUNDLE_DIR)


def log_model(pipeline: Any, pmml: Path, signature: Any) -> Any:
    """Log the fitted pipeline as the active run's MLflow model, with two flavors: ``sklearn``
    (skops serialisation, no pickle) and jpmml-mlflow's ``pmml``, holding the very PMML the
    version's SQL was compiled from (not a second conversion), so PMML consumers (JPMML, Spark)
    load the same model with ``jpmml_mlflow.pmml.load_model``."""
    import mlflow.sklearn  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)
    from jpmml_mlflow.flavor import add_pmml_flavor  # noqa: PLC0415 - as above (it imports mlflow)

    flavor = types.ModuleType("mlflow.sklearn")  # Model.log calls its save_model and names the model after it
    log, save, _ = add_pmml_flavor(flavor, mlflow.sklearn, "sk_model", lambda _model, **_: str(pmml))
    flavor.save_model = save  # type: ignore[attr-defined]
    return log(pipeline, name="model", signature=signature, skops_trusted_types=SKOPS_TRUSTED_TYPES,
               pip_requirements=model_requirements(pipeline))


def model_requirements(pipeline: Any) -> list[str]:
    """The logged model's pip requirements, pinned to the installed versions: the distributions its
    estimators' classes come from (scikit-learn, LightGBM) and :data:`MODEL_RUNTIME_PACKAGES`.

    Declared, not left to MLflow to infer: its inference loads the saved model again in a Python
    subprocess (seconds of CPU per logged version) and lists whatever that process happened to
    import (under pytest, pytest itself)."""
    parts = pipeline.get_params(deep=True).values()
    estimators = [pipeline, *(part for part in parts if hasattr(part, "get_params"))]
    distributions = importlib.metadata.packages_distributions()
    names = {name for estimator in estimators
             for name in distributions.get(type(estimator).__module__.partition(".")[0], [])}
    return sorted(f"{name}=={importlib.metadata.version(name)}" for name in {*names, *MODEL_RUNTIME_PACKAGES})


def set_alias(paths: Paths, alias: str, version: str) -> None:
    from mlflow import MlflowClient  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)

    configure(paths)
    MlflowClient().set_registered_model_alias(MODEL_NAME, alias, version)


def alias_version(paths: Paths, alias: str) -> str | None:
    """The version an alias points at, or None when unset."""
    from mlflow import MlflowClient  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - as above

    connect(paths)
    try:
        return str(MlflowClient().get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException:
        return None


def load_version_run_id(paths: Paths, version: str) -> str:
    """The MLflow run a registered version came from."""
    from mlflow import MlflowClient  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)

    connect(paths)
    return str(MlflowClient().get_model_version(MODEL_NAME, version).run_id)


def load_bundle(paths: Paths, alias: str = "champion") -> ModelBundle:
    """Load the version ``alias`` points at, with its feature SQL, contract and policy."""
    from mlflow import MlflowClient  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - as above

    connect(paths)
    try:
        version = MlflowClient().get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException as exc:
        raise ModelNotFoundError(f"no model version has alias {alias!r} in {paths.tracking_uri}") from exc
    return load_version(paths, str(version.version), alias=alias)


def load_version(paths: Paths, version: str, alias: str = "") -> ModelBundle:
    """Load one registered version with its feature SQL, contract and policies."""
    import mlflow  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)
    from mlflow import MlflowClient  # noqa: PLC0415 - as above

    connect(paths)
    version_info = MlflowClient().get_model_version(MODEL_NAME, version)
    pipeline = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{version}")
    folder = Path(mlflow.artifacts.download_artifacts(run_id=version_info.run_id, artifact_path=BUNDLE_DIR))
    model_sql = folder / MODEL_SQL_FILE
    return ModelBundle(
        name=MODEL_NAME,
        version=str(version),
        run_id=str(version_info.run_id),
        alias=alias,
        pipeline=pipeline,
        feature_sql=(folder / FEATURE_SQL_FILE).read_text(),
        loan_book=LoanBookSchema.from_yaml(folder / LOAN_BOOK_FILE),
        policy=json.loads((folder / POLICY_FILE).read_text()),
        model_sql=model_sql.read_text() if model_sql.exists() else None,
        registered_at=datetime.fromtimestamp(version_info.creation_timestamp / 1000, UTC).replace(tzinfo=None),
    )
