"""Stage ``train``: choose the model by repeated stratified cross-validation, then fit it.

* The data: the ``train`` split of ``train_loans`` for selection and the fit, the ``validation``
  split for the thresholds (dbt decides the split from the loan id; the test split is never read
  here).
* Outliers: a training row with a numeric feature more than ``outlier_iqr_multiple`` IQRs outside
  the quartiles is left out of the fit (a data-entry guard; such rows are still scored).
* Selection: every candidate of the search space (``model_candidates`` in ``dbt_project.yml``
  vars, see :mod:`ml.candidates`; a run may take some of them) is scored by repeated stratified
  k-fold on log loss, a proper scoring rule, so the winner is the one with the best *probabilities*; AUC,
  Brier score and calibration error are reported beside it. Every family fits by minimising log
  loss, which is what makes their probabilities calibrated; calibration is checked (out-of-fold
  and on the test split, gated there), not patched after the fact.
* Monotone risk: a feature the loan-book contract declares ``monotone: increasing`` or
  ``decreasing`` constrains the boosted trees (``monotonic_cst``); a logistic regression whose
  refitted coefficient of such a feature has the wrong sign is not selected (the gate then sweeps every
  declared input of the registered model, ``ml.monotone``).
* The winner is refitted on the train split, and *that* model's probabilities on the validation
  split go to the ``thresholds`` stage: thresholds are chosen on the model that is deployed, on rows
  it was not fitted on (never the cross-validation fold models, nor the test split). The
  out-of-fold predictions of the winner (first repeat) are kept for reference.
* The group column is never an input.

Everything lands in one MLflow run: parameters, the CV table, the fitted pipeline, the out-of-fold
predictions, the compiled feature SQL and the loan-book contract, the training-data fingerprint,
the git commit and the dbt manifest hash.
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from ml import registry
from ml.candidates import Candidate, CandidateError, search_space
from ml.metrics import calibration_error
from ml.scoring import model_sql_probabilities
from warehouse.build import current_loan_book, dbt_vars
from warehouse.dbt import compile_inline
from warehouse.errors import LendguardError
from warehouse.loan_book import LoanBookSchema
from warehouse.marts import open_marts
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.project import project_vars

if TYPE_CHECKING:
    from sqlglot import exp

log = logging.getLogger(__name__)

TRAINING_TABLE = "train_loans"
LABEL = "defaulted"
OOF_ARTIFACT = "training/oof_predictions.parquet"
VALIDATION_ARTIFACT = "training/validation_predictions.parquet"
"""The deployed model's probabilities on the validation split: what the thresholds are chosen on."""


class MonotoneError(LendguardError):
    """No candidate respects the directions the loan-book contract declares."""


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    candidate: Candidate
    cv_results: pd.DataFrame
    training_rows: int
    outliers_removed: int
    validation_rows: int


def build_pipeline(loan_book: LoanBookSchema, candidate: Candidate) -> Pipeline:
    """Preprocessing plus the candidate's model; the inputs are the contract's features only."""
    columns = ColumnTransformer(feature_transformers(loan_book), sparse_threshold=0.0)
    if candidate.family == "logistic_regression":
        model: Any = LogisticRegression(max_iter=2000, **candidate.params)
    elif candidate.family == "hist_gradient_boosting":
        model = HistGradientBoostingClassifier(early_stopping=False, random_state=0, **candidate.params)
    elif candidate.family == "lightgbm":
        # Start-up cost: lightgbm and its native library take about 0.1 s to load; only its candidates pay.
        from lightgbm import LGBMClassifier  # noqa: PLC0415

        # One thread (as every fit here, see cross_validate) and a fixed seed: the same model every time.
        model = LGBMClassifier(random_state=0, n_jobs=1, verbose=-1, **candidate.params)
    else:
        raise ValueError(f"unknown model family {candidate.family!r}")
    return Pipeline([("features", columns), ("model", model)])


def fit_pipeline(pipeline: Pipeline, loan_book: LoanBookSchema, features: pd.DataFrame, y: Any) -> Pipeline:
    """Fit ``pipeline``; a boosted model gets the contract's monotone directions as its constraint
    (scikit-learn's ``monotonic_cst``, LightGBM's ``monotone_constraints``).

    The constraint is one entry per *encoded* column, and the one-hot width is known only once the
    encoder has seen the data, so the preprocessing is fitted first to name its outputs.
    """
    model = pipeline.named_steps["model"]
    directions = loan_book.monotone_directions
    parameter = {"HistGradientBoostingClassifier": "monotonic_cst",
                 "LGBMClassifier": "monotone_constraints"}.get(type(model).__name__)
    if parameter is not None and directions:
        encoded = clone(pipeline.named_steps["features"]).fit(features).get_feature_names_out()
        by_name = {f"numeric__{name}": sign for name, sign in directions.items()}
        model.set_params(**{parameter: [by_name.get(str(column), 0) for column in encoded]})
    return pipeline.fit(features, y)


def monotone_violations(pipeline: Pipeline, loan_book: LoanBookSchema) -> dict[str, float]:
    """Declared features whose logistic coefficient has the wrong sign, with the coefficient.

    Standardising keeps each coefficient's sign, so on a linear model a declared direction holds
    exactly when its coefficient has the declared sign (zero is allowed: flat is monotone). Boosted
    trees are constrained while they fit, so they have nothing to report here.
    """
    model = pipeline.named_steps["model"]
    if not isinstance(model, LogisticRegression):
        return {}
    encoded = [str(c) for c in pipeline.named_steps["features"].get_feature_names_out()]
    coefficients = dict(zip(encoded, model.coef_[0], strict=True))
    feeding = feeds_derived_features(loan_book)
    return {name: float(coefficients[f"numeric__{name}"]) for name, sign in loan_book.monotone_directions.items()
            if name not in feeding and sign * coefficients[f"numeric__{name}"] < 0}


def feeds_derived_features(loan_book: LoanBookSchema) -> set[str]:
    """Inputs a derived feature is computed from. Their own coefficient is not their direction of
    risk (the simulator's loan amount acts through loan-to-income too, and a negative coefficient of
    its own can sit beside a rising total), so only the sweep, which moves the derived features
    with them, judges them: the gate's ``monotone_risk`` check."""
    return {feature for feature in loan_book.input_names for derived in loan_book.derived_features
            if re.search(rf"\b{re.escape(feature)}\b", derived.sql)}


def feature_transformers(loan_book: LoanBookSchema) -> list[tuple[str, Any, list[str]]]:
    """Imputation and scaling for the numeric features, one-hot encoding for the categorical ones.

    A kind the loan book does not have gets no transformer: scikit-learn skips a transformer with
    no columns when fitting, and sklearn2pmml then fails on the unfitted one (issue #15).
    """
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    kinds = [("numeric", numeric, list(loan_book.model_numeric)),
             ("categorical", OneHotEncoder(handle_unknown="ignore"), list(loan_book.model_categorical))]
    return [(name, transformer, names) for name, transformer, names in kinds if names]


def check_candidates(loan_book: LoanBookSchema, candidates: tuple[Candidate, ...]) -> None:
    """Build every candidate's estimator before any is fitted: a parameter its family does not take
    fails here, naming the candidate, not after the others were cross-validated."""
    if not candidates:
        raise CandidateError("no candidates to train")
    for candidate in candidates:
        try:
            build_pipeline(loan_book, candidate)
        except TypeError as error:
            raise CandidateError(f"candidate {candidate.name} ({candidate.family}): {error}") from error


def load_split(paths: Paths, loan_book: LoanBookSchema, split: str) -> pd.DataFrame:
    """One split of the training table, from the published snapshot, in loan-id order."""
    columns = ", ".join(["loan_id", "fairness_group", LABEL, "split", "snapshot_id", *loan_book.feature_names])
    with open_marts(paths) as marts:
        frame = marts.frame(f"select {columns} from {TRAINING_TABLE} where split = ? order by loan_id", [split])
    if frame.empty:
        raise ValueError(f"the {split} split of {TRAINING_TABLE} is empty: land a loan book and run `lendguard build`")
    return frame


def outlier_mask(frame: pd.DataFrame, numeric: list[str], iqr_multiple: float) -> np.ndarray:
    """True for rows with a numeric value beyond ``iqr_multiple`` IQRs outside the quartiles."""
    values = frame[numeric]
    q1, q3 = values.quantile(0.25), values.quantile(0.75)
    spread = (q3 - q1).replace(0, np.nan)
    low, high = q1 - iqr_multiple * spread, q3 + iqr_multiple * spread
    beyond = values.lt(low) | values.gt(high)
    mask: np.ndarray = beyond.any(axis=1).to_numpy()  # pandas has no type information
    return mask


def cross_validate(
    frame: pd.DataFrame, loan_book: LoanBookSchema, candidates: tuple[Candidate, ...], *,
    folds: int, repeats: int, seed: int,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Score every candidate on the same repeated stratified folds.

    Returns one row per candidate (means and standard deviations over folds) and, per candidate,
    the out-of-fold probabilities of the first repeat. One thread per fit: gradient boosting's
    OpenMP threads slow down by an order of magnitude when another process shares the two cores
    (measured: 4.3 s against 0.8 s per fit), and a single thread gives the same model every time.
    """
    with threadpool_limits(limits=1):
        return _cross_validate(frame, loan_book, candidates, folds=folds, repeats=repeats, seed=seed)


def _cross_validate(
    frame: pd.DataFrame, loan_book: LoanBookSchema, candidates: tuple[Candidate, ...], *,
    folds: int, repeats: int, seed: int,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    features, y = frame[list(loan_book.feature_names)], frame[LABEL].to_numpy()
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(splitter.split(features, y))
    rows, oof = [], {}
    for candidate in candidates:
        scores: dict[str, list[float]] = {"log_loss": [], "auc": [], "brier": [], "calibration_error": []}
        first_repeat = np.full(len(y), np.nan)
        wrong_signs = 0
        for index, (fit_rows, held_rows) in enumerate(splits):
            model = fit_pipeline(build_pipeline(loan_book, candidate), loan_book, features.iloc[fit_rows], y[fit_rows])
            wrong_signs += bool(monotone_violations(model, loan_book))
            p = model.predict_proba(features.iloc[held_rows])[:, 1]
            scores["log_loss"].append(log_loss(y[held_rows], p, labels=[0, 1]))
            scores["auc"].append(roc_auc_score(y[held_rows], p))
            scores["brier"].append(brier_score_loss(y[held_rows], p))
            scores["calibration_error"].append(calibration_error(y[held_rows], p))
            if index < folds:
                first_repeat[held_rows] = p
        oof[candidate.name] = first_repeat
        row: dict[str, Any] = {"candidate": candidate.name, "family": candidate.family, "params": str(candidate.params),
                               "monotone_violating_folds": wrong_signs}
        for metric, values in scores.items():
            row[f"{metric}_mean"] = float(np.mean(values))
            row[f"{metric}_std"] = float(np.std(values))
        rows.append(row)
        log.info("cv %s: log loss %.4f, AUC %.4f", candidate.name, row["log_loss_mean"], row["auc_mean"])
    results = pd.DataFrame(rows).sort_values(["log_loss_mean", "candidate"]).reset_index(drop=True)
    return results, oof


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 over the training rows (ids, label, features), independent of row order."""
    ordered = frame.sort_values("loan_id").reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes()).hexdigest()


def manifest_hash(paths: Paths) -> str:
    """SHA-256 of the dbt manifest of the last build (the SQL that produced the training table)."""
    manifest = paths.data_dir / "dbt" / "target" / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.exists() else "unknown"


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def compile_feature_sql(paths: Paths, loan_book: LoanBookSchema) -> str:
    """The feature macro rendered for the scoring path (``select … from application_rows``)."""
    return compile_inline(
        paths, f"select {{{{ loan_feature_columns() }}}} from {registry.FEATURE_RELATION}", dbt_vars(loan_book)
    )


SQL_DIALECTS = ("duckdb", "spark", "postgres")
PARITY_TOLERANCE = 1e-9


class ParityError(LendguardError):
    """The compiled SQL does not reproduce the fitted model: the version must not be registered."""


def export_model(pipeline: Pipeline, loan_book: LoanBookSchema, folder: Path) -> exp.Select:
    """Write ``folder/model.pmml`` and return the model compiled from it, reading ``model_features``."""
    from ml.export.pmml import export_pmml  # noqa: PLC0415 - starts Java; only when a model is exported
    from ml.export.sql import compile_pmml  # noqa: PLC0415 - start-up cost: imports sqlglot (about 0.4 s); only when a model is exported

    pmml = export_pmml(pipeline, loan_book.model_numeric, loan_book.model_categorical, folder / "model.pmml")
    return compile_pmml(pmml, relation=registry.MODEL_FEATURES_RELATION)


def log_model_artifacts(pipeline: Pipeline, loan_book: LoanBookSchema, features: pd.DataFrame, folder: Path) -> float:
    """Export the fitted pipeline to PMML, compile it to SQL, check parity, log both to the run.

    Parity is checked on the training rows themselves: the SQL, run in DuckDB, must give
    scikit-learn's probabilities within :data:`PARITY_TOLERANCE`, or the stage fails. Returns the
    largest absolute difference.
    """
    import mlflow  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)

    from ml.export.sql import to_sql  # noqa: PLC0415 - start-up cost: imports sqlglot (about 0.4 s); only when a model is exported

    query = export_model(pipeline, loan_book, folder)
    for dialect in SQL_DIALECTS:
        (folder / registry.model_sql_file(dialect)).write_text(to_sql(query, dialect, pretty=True) + "\n")
    sql_probability = model_sql_probabilities(to_sql(query, "duckdb"), features)
    difference = float(np.max(np.abs(sql_probability - pipeline.predict_proba(features)[:, 1])))
    if not difference <= PARITY_TOLERANCE:
        raise ParityError(f"the compiled SQL differs from scikit-learn by up to {difference:.3g}")
    mlflow.log_artifacts(str(folder), artifact_path=registry.BUNDLE_DIR)
    return difference


def fit_winner(
    fit_frame: pd.DataFrame, loan_book: LoanBookSchema, candidates: tuple[Candidate, ...], cv_results: pd.DataFrame,
) -> tuple[Candidate, Pipeline]:
    """Refit the best candidate by CV log loss whose refit respects the declared directions.

    Only the refit is held to the signs: it is the model that is deployed. A fold's wrong sign is
    reported (``monotone_violating_folds``), not disqualifying: a raw input whose effect runs
    through derived features (income, beside log-income and loan-to-income) has a coefficient near
    zero that a smaller sample can flip. The gate's sweep judges the deployed model's risk as a whole.
    """
    features = fit_frame[list(loan_book.feature_names)]
    refused: list[str] = []
    for row in cv_results.itertuples():
        candidate = next(c for c in candidates if c.name == row.candidate)
        with threadpool_limits(limits=1):
            pipeline = fit_pipeline(build_pipeline(loan_book, candidate), loan_book, features, fit_frame[LABEL])
        wrong = monotone_violations(pipeline, loan_book)
        if not wrong:
            if refused:
                log.warning("passed over for breaking a declared monotone direction: %s", "; ".join(refused))
            return candidate, pipeline
        refused.append(f"{candidate.name} ({', '.join(f'{k} coefficient {v:+.3g}' for k, v in wrong.items())})")
    raise MonotoneError(f"no candidate respects the loan book's monotone directions: {'; '.join(refused)}")


def train(paths: Paths, candidates: tuple[Candidate, ...] | None = None) -> TrainOutcome:
    """Select among ``candidates`` (default: the whole search space), fit and log the model; return
    the MLflow run the later stages continue."""
    import mlflow  # noqa: PLC0415 - about a second to import
    from mlflow.models import infer_signature  # noqa: PLC0415 - as above

    rules = project_vars()
    candidates = search_space() if candidates is None else candidates
    loan_book = current_loan_book(paths)
    check_candidates(loan_book, candidates)
    frame = load_split(paths, loan_book, "train")
    outliers = outlier_mask(frame, list(loan_book.model_numeric), float(rules["outlier_iqr_multiple"]))
    fit_frame = frame[~outliers].reset_index(drop=True)
    if fit_frame[LABEL].nunique() < 2:
        raise ValueError("the train split has a single outcome class: nothing to learn")
    features = list(loan_book.feature_names)
    cv_results, oof = cross_validate(
        fit_frame, loan_book, candidates,
        folds=int(rules["cv_folds"]), repeats=int(rules["cv_repeats"]), seed=int(rules["cv_seed"]),
    )
    best, pipeline = fit_winner(fit_frame, loan_book, candidates, cv_results)
    feature_sql = compile_feature_sql(paths, loan_book)
    oof_frame = pd.DataFrame({
        "loan_id": fit_frame["loan_id"], "fairness_group": fit_frame["fairness_group"],
        LABEL: fit_frame[LABEL], "probability": oof[best.name],
    })
    validation = load_split(paths, loan_book, "validation")
    validation_frame = pd.DataFrame({
        "loan_id": validation["loan_id"], "fairness_group": validation["fairness_group"],
        LABEL: validation[LABEL], "probability": pipeline.predict_proba(validation[features])[:, 1],
    })

    registry.configure(paths)
    with mlflow.start_run(run_name=f"train {best.name}") as run:
        mlflow.log_params({
            "model": best.name, "family": best.family, **{f"model.{k}": v for k, v in best.params.items()},
            "cv_folds": rules["cv_folds"], "cv_repeats": rules["cv_repeats"], "cv_seed": rules["cv_seed"],
            "outlier_iqr_multiple": rules["outlier_iqr_multiple"], "features": ",".join(features),
            "candidates": ",".join(c.name for c in candidates),
        })
        best_row = cv_results[cv_results["candidate"] == best.name].iloc[0]
        mlflow.log_metrics({
            "cv_log_loss": best_row["log_loss_mean"], "cv_auc": best_row["auc_mean"],
            "cv_brier": best_row["brier_mean"], "cv_calibration_error": best_row["calibration_error_mean"],
            "training_rows": len(fit_frame), "outliers_removed": int(outliers.sum()),
            "validation_rows": len(validation_frame),
        })
        mlflow.set_tags({
            "stage": "trained",
            "git_commit": git_commit(),
            "dbt_manifest_sha256": manifest_hash(paths),
            "training_data_sha256": data_fingerprint(frame),
            "training_data_rows": str(len(frame)),
            "loan_book_snapshot": str(frame["snapshot_id"].iloc[0]),
            "loan_book_contract": loan_book.fingerprint(),
        })
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            cv_results.to_csv(folder / "cv_results.csv", index=False)
            oof_frame.to_parquet(folder / Path(OOF_ARTIFACT).name, index=False)
            validation_frame.to_parquet(folder / Path(VALIDATION_ARTIFACT).name, index=False)
            mlflow.log_artifacts(str(folder), artifact_path="training")
        registry.log_bundle_files(feature_sql, loan_book, policy=None)
        sample = fit_frame[features].head(5)
        with tempfile.TemporaryDirectory() as tmp:
            parity = log_model_artifacts(pipeline, loan_book, fit_frame[features], Path(tmp))
            info = registry.log_model(
                pipeline, Path(tmp) / "model.pmml", infer_signature(sample, pipeline.predict_proba(sample))
            )
        mlflow.log_metric("sql_parity_max_abs_diff", parity)
        mlflow.set_tag("model_uri", info.model_uri)
    log.info("trained %s (cv log loss %.4f) in run %s", best.name, best_row["log_loss_mean"], run.info.run_id)
    return TrainOutcome(run.info.run_id, best, cv_results, len(fit_frame), int(outliers.sum()), len(validation_frame))
