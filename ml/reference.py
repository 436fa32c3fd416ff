"""Drift references: the inputs a model version was fitted on, landed for the monitoring marts.

Production drift is measured against the training data of the version that made each prediction
(issue #6), not against whatever was trained last. The evaluate stage calls
:func:`land_reference_inputs` once per registered version: the rows of the training run's fit
(the ``train`` split minus the outlier rows the fit left out, exactly the loan ids of the run's
out-of-fold predictions), with their raw inputs under the loan-book names, land as the
``reference_inputs`` dataset and dbt stages them as ``stg_landing__reference_inputs``.

A version without reference rows (registered before this existed, or whose training snapshot is
gone) has no drift rows; every other monitoring mart still covers it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from warehouse import datasets
from warehouse.marts import open_marts

if TYPE_CHECKING:
    from warehouse.loan_book import LoanBookSchema
    from warehouse.paths import Paths

log = logging.getLogger(__name__)

TRAINING_TABLE = "train_loans"


def reference_frame(paths: Paths, loan_book: LoanBookSchema, fitted_ids: pd.Series, version: str) -> pd.DataFrame:
    """The fitted rows' group and inputs from the published training table, in loan-id order."""
    inputs = ", ".join(loan_book.input_names)
    with open_marts(paths) as marts:
        split = marts.frame(f"select loan_id, fairness_group, {inputs} from {TRAINING_TABLE} "
                            "where split = 'train' order by loan_id")
    fitted = split["loan_id"].astype(str).isin(fitted_ids.astype(str).unique())
    frame = split[fitted].drop(columns="loan_id").reset_index(drop=True)
    frame.insert(0, "model_version", version)
    return frame.rename(columns={"fairness_group": loan_book.group_column})


def land_reference_inputs(paths: Paths, loan_book: LoanBookSchema, version: str, oof: pd.DataFrame) -> int:
    """Land ``version``'s training inputs (the loan ids of ``oof``); returns the rows landed.

    Lands nothing, with a warning, when the published training table no longer holds every fitted
    row (the loan book was replaced between training and evaluation): a partial or different
    reference would make drift verdicts about the wrong data.
    """
    frame = reference_frame(paths, loan_book, oof["loan_id"], version)
    expected = oof["loan_id"].nunique()
    if len(frame) != expected:
        log.warning(
            "version %s: %d of its %d training rows are in %s; no drift reference landed",
            version, len(frame), expected, TRAINING_TABLE,
        )
        return 0
    datasets.land_reference_inputs(paths, loan_book, frame)
    log.info("version %s: %d reference rows landed for drift monitoring", version, len(frame))
    return len(frame)
