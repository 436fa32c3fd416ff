"""`lendguard outcomes FILE`: a file is checked whole; a bad one is refused with every problem named
and nothing landed; a good one lands as one file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from warehouse import datasets, landing
from warehouse.outcomes import OutcomesRejectedError, import_outcomes, validate
from warehouse.paths import Paths
from warehouse.prediction_log import META_FIELDS


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
