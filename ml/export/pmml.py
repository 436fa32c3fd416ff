"""Write a fitted scikit-learn pipeline as PMML with sklearn2pmml: the artifact the SQL is compiled from.

Why PMML: it describes the whole pipeline (imputation, scaling, one-hot encoding and the model)
declaratively, so the warehouse SQL and the API derive from one document, and an independent
evaluator (JPMML) can check it. sklearn2pmml runs a Java converter (about a second per model).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from sklearn2pmml import make_pmml_pipeline, sklearn2pmml

from warehouse.errors import LendguardError

log = logging.getLogger(__name__)

TARGET_FIELD = "defaulted"
"""The label's name in the PMML (the training table's label column)."""


class PMMLExportError(LendguardError):
    """The conversion failed, or wrote a document whose inputs are not the declared features."""


def export_pmml(
    pipeline: Pipeline,
    feature_names_numeric: Sequence[str],
    feature_names_categorical: Sequence[str],
    path: str | Path,
    *,
    target: str = TARGET_FIELD,
) -> Path:
    """Convert the fitted ``pipeline`` (preprocessing included) to PMML at ``path``; return the path.

    The pipeline is not changed: sklearn2pmml's escaping mutates what it converts, so it converts a
    deep copy. The written document is checked: the declared features it reads must be continuous
    doubles (numeric) and strings (categorical).
    """
    check_is_fitted(pipeline)
    numeric, categorical = list(feature_names_numeric), list(feature_names_categorical)
    declared = numeric + categorical
    if len(set(declared)) != len(declared):
        raise ValueError(f"feature names must be distinct: {declared}")
    fitted = getattr(pipeline, "feature_names_in_", None)
    if fitted is None:
        raise ValueError("fit the pipeline on a DataFrame: its PMML inputs are named after the columns")
    if set(fitted) != set(declared):
        raise ValueError(f"the pipeline was fitted on {list(fitted)}, not on the declared features {declared}")
    # Active fields in the fitted column order: sklearn2pmml maps the ColumnTransformer's column
    # names onto them.
    pmml_pipeline = make_pmml_pipeline(copy.deepcopy(pipeline), active_fields=list(fitted), target_fields=[target])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    output = io.StringIO()
    try:
        # sklearn2pmml prints the Java converter's log and a banner: route them to logging instead.
        with contextlib.redirect_stdout(output):
            sklearn2pmml(pmml_pipeline, str(path))
    except RuntimeError as error:
        raise PMMLExportError(f"sklearn2pmml failed: {error}\n{output.getvalue()}") from error
    log.debug("sklearn2pmml output:\n%s", output.getvalue())
    _check_inputs(path, numeric, categorical)
    log.info("exported %s to PMML in %.2f s", type(pipeline[-1]).__name__, time.perf_counter() - started)
    return path


def _check_inputs(path: Path, numeric: list[str], categorical: list[str]) -> None:
    """Every declared feature the document reads has the declared kind."""
    # Written a moment ago by sklearn2pmml: not untrusted input.
    root = ET.parse(path).getroot()  # noqa: S314
    namespace = root.tag.partition("}")[0] + "}"
    fields = {
        field.get("name"): (field.get("optype"), field.get("dataType")) for field in root.iter(f"{namespace}DataField")
    }
    expected = dict.fromkeys(numeric, ("continuous", "double")) | dict.fromkeys(categorical, ("categorical", "string"))
    wrong = sorted(name for name in expected if name in fields and fields[name] != expected[name])
    if wrong:
        raise PMMLExportError(f"{path}: input fields {wrong} are not of the declared kind")
    unused = sorted(set(expected) - set(fields))
    if unused:
        # The converter leaves out inputs no part of the model reads (a tree ensemble may never split on one).
        log.info("PMML %s does not use the features %s", path.name, unused)
