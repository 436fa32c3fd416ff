"""Benchmark (issue #18, item 6): how far BISG-weighted fairness numbers are from the true ones.

A simulated book without its group column (``lendguard simulate --proxies --omit-group``: each
applicant's surname and ZCTA drawn from the Census tables given their group) goes through the
documented steps (Census tables loaded, built, one candidate trained, thresholds, evaluated: the
single threshold, the only policy such a book has). On the test split the deployed model's decisions
are scored twice with the same code (``ml.metrics.policy_metrics``): weighted by each loan's BISG
probabilities (``feat_loan_bisg``, what the evaluation landed) and by the group the simulator drew
the applicant's surname and area for (the truth, which a lender without the group column never
sees; for an applicant simulated as "Not provided", the group drawn for them). Reported per group:
the true and the BISG-weighted FPR, their difference, the true size and BISG's (Σw, and the
effective size), and the FPR gap both ways (groups with at least ``fpr_gap_min_repaid`` repaid test
loans, by effective size for BISG, as the gate counts them).

    .venv/bin/python bench/bisg_accuracy.py --loans 100000 --out bench/results/bisg-accuracy.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from record import emit, machine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CANDIDATE = "logreg_c1"


def run(loans: int, seed: int) -> dict[str, Any]:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    data = Path(tempfile.mkdtemp(prefix="bisg-accuracy-")) / "data"
    os.environ["LENDGUARD_DATA_DIR"] = str(data)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"
    # Imported once the deployment's environment is set (settings are read at import and cached).
    from lendguard import pipeline  # noqa: PLC0415
    from ml import registry  # noqa: PLC0415
    from ml.delivery.evaluation import load_bisg  # noqa: PLC0415
    from ml.delivery.thresholds import costs  # noqa: PLC0415
    from ml.metrics import BISG, OVERALL, SELF_REPORTED, fpr_gap, policy_metrics  # noqa: PLC0415
    from ml.train import LABEL, load_split  # noqa: PLC0415
    from warehouse.build import build  # noqa: PLC0415
    from warehouse.census import load_reference_data  # noqa: PLC0415
    from warehouse.importer import census_proxies, land_simulated  # noqa: PLC0415
    from warehouse.paths import get_paths  # noqa: PLC0415
    from warehouse.project import project_vars  # noqa: PLC0415
    from warehouse.simulator import TRUE_GROUP, simulate_loans  # noqa: PLC0415

    paths = get_paths()
    started = time.perf_counter()
    land_simulated(paths, loans, seed, proxies=True, omit_group=True)
    load_reference_data(paths, loaded_by="bench")
    assert build(paths).ok
    version = pipeline.run_until(paths, "evaluate", candidates=[CANDIDATE]).version
    assert version is not None
    seconds = time.perf_counter() - started

    bundle = registry.load_version(paths, version)
    test = load_split(paths, bundle.loan_book, "test")
    truth = pa.concat_tables(simulate_loans(loans, seed, proxies=census_proxies(), keep_truth=True))
    true_group = dict(zip(truth.column("loan_id").to_pylist(), truth.column(TRUE_GROUP).to_pylist(), strict=True))
    groups = test["loan_id"].map(true_group).to_numpy()
    p = bundle.pipeline.predict_proba(test[list(bundle.loan_book.feature_names)])[:, 1]
    cost_fn, cost_fp = costs()
    metrics = policy_metrics(test[LABEL].to_numpy(), p, groups, bundle.policies.active, cost_fn=cost_fn,
                             cost_fp=cost_fp, bisg=load_bisg(paths, bundle.loan_book, test["loan_id"]))
    minimum = int(project_vars()["fpr_gap_min_repaid"])
    true = metrics[metrics["method"] == SELF_REPORTED].set_index("group")
    bisg = metrics[metrics["method"] == BISG].set_index("group")
    rows = []
    for group in sorted(set(true.index) | set(bisg.index)):
        if group == OVERALL:
            continue
        t = true.loc[group] if group in true.index else None
        b = bisg.loc[group] if group in bisg.index else None
        rows.append({
            "group": group,
            "true_n": None if t is None else int(t["n"]), "true_repaid": None if t is None else int(t["repaid"]),
            "true_fpr": None if t is None else float(t["fpr"]),
            "bisg_n": None if b is None else round(float(b["n"]), 1),
            "bisg_repaid": None if b is None else round(float(b["repaid"]), 1),
            "bisg_repaid_effective": None if b is None else round(float(b["repaid_effective"]), 1),
            "bisg_fpr": None if b is None else float(b["fpr"]),
            "bisg_fpr_ci": None if b is None else [float(b["fpr_ci_low"]), float(b["fpr_ci_high"])],
            "fpr_difference": None if t is None or b is None else float(b["fpr"] - t["fpr"]),
        })
    return {
        "benchmark": "bisg_accuracy",
        "command": f".venv/bin/python bench/bisg_accuracy.py --loans {loans} --seed {seed}",
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "loans": loans, "seed": seed, "test_rows": len(test), "model_version": version, "candidate": CANDIDATE,
        "policy": bundle.policies.deployed, "threshold": bundle.policies.active.default_threshold,
        "pipeline_seconds": round(seconds, 1),
        "groups": rows,
        "fpr_gap": {
            "min_repaid": minimum,
            "true": fpr_gap(metrics, minimum, method=SELF_REPORTED),
            "bisg": fpr_gap(metrics, minimum, method=BISG),
        },
        "warehouse_matches": _warehouse_matches(paths, version, bisg),
    }


def _warehouse_matches(paths: Any, version: str, bisg: pd.DataFrame) -> bool:
    """The evaluation the pipeline landed (eval_metrics, method bisg) equals the bench's BISG rows."""
    from warehouse.build import build  # noqa: PLC0415 - as in run
    from warehouse.publish import connect_snapshot  # noqa: PLC0415

    assert build(paths, select=["eval_metrics"]).ok
    with connect_snapshot(paths) as con:
        landed = con.execute("select group_name, fpr from eval_metrics where candidate_version = ? and method = 'bisg' "
                             "and role = 'candidate' and group_name <> '__overall__'", [version]).df()
    merged = landed.set_index("group_name")["fpr"].sort_index()
    return bool(((merged - bisg["fpr"].reindex(merged.index)).abs() < 1e-12).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    emit(run(args.loans, args.seed), args.out)


if __name__ == "__main__":
    main()
