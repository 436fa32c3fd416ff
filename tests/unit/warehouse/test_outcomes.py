"""`lendguard outcomes FILE`: a file is checked whole; a bad one is refused with every problem named
and nothing landed; a good one lands as one file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from warehouse import datasets, landing
from warehouse.loan_book import simulated_schema
from warehouse.outcomes import (
    SIMULATED_FIRST_DEFAULT_DAY,
    SIMULATED_HORIZON_DAYS,
    OutcomesRejectedError,
    import_outcomes,
    outcome_delays,
    simulate_outcomes,
    validate,
)
from warehouse.paths import Paths
from warehouse.prediction_log import META_FIELDS, prediction_log_schema
from warehouse.simulator import CATEGORICAL_FEATURES, NUMERIC_FEATURES, simulate_traffic


def land_log(paths: Paths, ids: list[str]) -> None:
    schema = pa.schema(list(META_FIELDS))
    rows = {f.name: [None] * len(ids) for f in META_FIELDS}
    rows.update(request_id=ids, received_at=[pd.Timestamp("2026-01-05 08:00")] * len(ids), status_code=[200] * len(ids))
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, "test").write(pa.table(rows, schema=schema))


def outcome_files(paths: Paths) -> list[Path]:
    return sorted((paths.landing / datasets.OUTCOMES).glob("*.parquet"))


def test_a_good_csv_lands_whole(paths: Paths, tmp_path: Path) -> None:
    land_log(paths, ["r1", "r2", "r3"])
    feed = tmp_path / "outcomes.csv"
    feed.write_text("request_id,defaulted,outcome_at,extra\nr1,1,2026-07-01T00:00:00Z,x\nr2,0,,y\nr3,true,2026-07-02,z\n")
    result = import_outcomes(paths, feed)
    assert (result.rows, result.defaults) == (3, 2)
    [landed] = outcome_files(paths)
    table = pd.read_parquet(landed)
    assert list(table.columns) == datasets.SCHEMAS[datasets.OUTCOMES].names
    assert list(table.defaulted) == [1, 0, 1]
    assert table.outcome_at[0] == pd.Timestamp("2026-07-01")


def test_every_problem_is_named_and_nothing_lands(paths: Paths, tmp_path: Path) -> None:
    land_log(paths, ["r1", "r2"])
    feed = tmp_path / "outcomes.csv"
    feed.write_text("request_id,defaulted,outcome_at\nr1,2,soon\nr1,0,2026-07-01\n,1,2026-07-01\nzz,0,2026-07-01\n")
    with pytest.raises(OutcomesRejectedError) as caught:
        import_outcomes(paths, feed)
    text = "\n".join(caught.value.problems)
    assert "request_id is empty in row(s) 3" in text
    assert "request_id repeats in row(s) 1, 2" in text
    assert "defaulted must be 1/0" in text
    assert "['2']" in text
    assert "outcome_at is not a timestamp in row(s) 1" in text
    assert "not in the prediction log" in text
    assert "zz" in text
    assert outcome_files(paths) == []


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (pd.DataFrame({"request_id": ["r1"]}), "missing column(s) ['defaulted']"),
        (pd.DataFrame({"request_id": [], "defaulted": []}), "no rows"),
    ],
)
def test_missing_columns_and_empty_files_are_refused(frame: pd.DataFrame, problem: str) -> None:
    with pytest.raises(OutcomesRejectedError, match="outcomes not landed") as caught:
        validate(frame, None, "feed")
    assert problem in caught.value.problems[0]


def test_unsupported_and_missing_files_are_refused(paths: Paths, tmp_path: Path) -> None:
    (tmp_path / "o.json").write_text("{}")
    with pytest.raises(OutcomesRejectedError, match="not supported"):
        import_outcomes(paths, tmp_path / "o.json")
    with pytest.raises(OutcomesRejectedError, match="no such file"):
        import_outcomes(paths, tmp_path / "nope.csv")


def land_decided_traffic(paths: Paths, traffic: pa.Table, unknown: list[str | None], prefix: str = "q") -> None:
    """A prediction log of accepted, decided requests carrying ``traffic``'s inputs, as the API logs them."""
    ids = [f"{prefix}{i}" for i in range(traffic.num_rows)]
    rows = {f.name: pa.nulls(len(ids), f.type) for f in META_FIELDS}
    rows.update(request_id=pa.array(ids), received_at=pa.array([pd.Timestamp("2026-01-05 08:00")] * len(ids)),
                status_code=pa.array([200] * len(ids), pa.int32()), decision=pa.array(["auto_approve"] * len(ids)),
                unknown_categories=pa.array(unknown, pa.string()))
    table = pa.table({**rows, **{name: traffic.column(name) for name in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)}})
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, "test").write(table)


def test_simulation_skips_and_reports_what_it_cannot_simulate_and_keeps_working(paths: Paths) -> None:
    traffic = simulate_traffic("stable", 8, seed=4)
    purpose = traffic.column("purpose").to_pylist()
    purpose[2] = "spaceship"  # accepted by the API, flagged as unknown
    traffic = traffic.set_column(traffic.schema.get_field_index("purpose"), "purpose", pa.array(purpose))
    score = traffic.column("credit_score").to_pylist()
    score[5] = None  # sent empty
    traffic = traffic.set_column(traffic.schema.get_field_index("credit_score"), "credit_score",
                                 pa.array(score, pa.float64()))
    land_decided_traffic(paths, traffic, [None, "", "purpose", None, None, None, None, None])

    first = simulate_outcomes(paths, seed=1)
    assert first.rows == 6
    assert first.not_simulated == ("1 request(s) with an input missing got no outcome, e.g. q5",
                                   "1 request(s) with an unknown category got no outcome, e.g. q2")
    landed = pd.read_parquet(outcome_files(paths)[0])
    assert sorted(landed["request_id"]) == ["q0", "q1", "q3", "q4", "q6", "q7"]

    land_decided_traffic(paths, simulate_traffic("stable", 2, seed=5), [None, None], prefix="r")  # later requests
    second = simulate_outcomes(paths, seed=1)
    assert second.rows == 2, "the requests it cannot simulate do not stop it"
    assert len(second.not_simulated) == 2, "and they are reported again, still without an outcome"

    with pytest.raises(OutcomesRejectedError, match="no request can be simulated: 1 request"):
        simulate_outcomes(paths, seed=1)


def test_simulated_outcomes_mature_over_the_first_year(paths: Paths) -> None:
    """Defaults become known spread over months 1 to 12 (vintage curves rise), repayments at the year's end."""
    book = simulated_schema()
    traffic = simulate_traffic("stable", 3_000, seed=8)
    rows = traffic.select([book.group_column, *book.input_names]).to_pylist()
    occurred = traffic.column("occurred_at").cast(pa.timestamp("us")).to_pylist()
    schema = prediction_log_schema(book)
    log = {f.name: [None] * len(rows) for f in schema}
    log.update({name: [r[name] for r in rows] for name in [book.group_column, *book.input_names]})
    log.update(request_id=[f"r{i:05d}" for i in range(len(rows))], received_at=occurred, occurred_at=occurred,
               status_code=[200] * len(rows), decision=["auto_approve"] * len(rows))
    landing.LandingWriter(paths.landing, landing.PREDICTION_LOG, "test").write(pa.table(log, schema=schema))

    result = simulate_outcomes(paths, seed=5)
    outcomes = pd.read_parquet(outcome_files(paths)[0]).set_index("request_id")
    event = pd.Series(occurred, index=[f"r{i:05d}" for i in range(len(rows))])
    days = (outcomes["outcome_at"] - event.reindex(outcomes.index)).dt.total_seconds() / 86_400
    defaulted = outcomes["defaulted"] == 1
    assert result.defaults == int(defaulted.sum()) > 100
    assert (days[~defaulted] == SIMULATED_HORIZON_DAYS).all(), "a repayment is known at the year's end"
    assert days[defaulted].between(SIMULATED_FIRST_DEFAULT_DAY, SIMULATED_HORIZON_DAYS).all()
    months = (days[defaulted] // 30.4).astype(int)
    assert set(range(1, 12)) <= set(months), "defaults known in every month on book from 1 to 11"
    assert abs(days[defaulted].mean() - (SIMULATED_FIRST_DEFAULT_DAY + SIMULATED_HORIZON_DAYS) / 2) < 15, "uniform"


def test_outcome_delays_refuse_a_horizon_before_the_first_default_day() -> None:
    with pytest.raises(ValueError, match="horizon_days must exceed 30"):
        outcome_delays(np.array([True]), np.array([0.5]), 30)
