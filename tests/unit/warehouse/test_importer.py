"""`lendguard import`: a good book lands whole; a bad one is refused, naming column and problem."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

from warehouse import landing
from warehouse.importer import ImportRejectedError, import_loan_book
from warehouse.loan_book import SIMULATED_SCHEMA_PATH
from warehouse.paths import Paths
from warehouse.simulator import simulate_loans


@pytest.fixture(scope="module")
def book() -> pa.Table:
    return pa.concat_tables(simulate_loans(400, seed=3))


def _write_csv(table: pa.Table, path: Path) -> Path:
    pacsv.write_csv(table, path)
    return path


def _landed(paths: Paths) -> list[Path]:
    return sorted((paths.landing / landing.LOANS).glob("*")) if (paths.landing / landing.LOANS).exists() else []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_valid_book_lands_as_one_snapshot(paths: Paths, book: pa.Table, tmp_path: Path, suffix: str) -> None:
    file = tmp_path / f"book{suffix}"
    if suffix == ".csv":
        _write_csv(book, file)
    else:
        pq.write_table(book, file)
    result = import_loan_book(paths, file, SIMULATED_SCHEMA_PATH)
    assert result.rows == book.num_rows
    snapshot = landing.latest_snapshot(paths.landing, landing.LOANS)
    assert snapshot is not None
    assert snapshot.name == f"snapshot_id={result.snapshot_id}"
    assert (snapshot / landing.SNAPSHOT_SCHEMA_FILE).exists()
    landed = duckdb.sql(f"select * from read_parquet('{snapshot}/*.parquet') order by loan_id").fetch_arrow_table()
    assert landed.num_rows == book.num_rows
    original = book.sort_by("loan_id")
    assert landed.column("annual_income").to_pylist() == pytest.approx(original.column("annual_income").to_pylist())
    assert landed.column("ethnicity").to_pylist() == original.column("ethnicity").to_pylist()


def _corrupt(book: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = book.column(column).to_pylist()
    values[row] = value
    return book.set_column(book.schema.get_field_index(column), column, pa.array(values).cast(pa.string()))


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("annual_income", "-5000", "'annual_income' is below the minimum 0"),
        ("annual_income", "lots", "'annual_income' is not a number"),
        ("term_months", "48", "'term_months' is not one of [36, 60]"),
        ("credit_score", "701.5", "'credit_score' is not a whole number"),
        ("purpose", "yacht", "'purpose' has a value outside"),
        ("loan_status", "written_off", "'loan_status' has a value outside"),
        ("application_date", "yesterday", "'application_date' is not a date"),
        ("debt_to_income", "", "'debt_to_income' is empty"),
        ("loan_id", "L000000002", "'loan_id': 1 duplicate loan ids"),
    ],
)
def test_a_bad_book_is_refused_and_nothing_lands(
    paths: Paths, book: pa.Table, tmp_path: Path, column: str, value: str, expected: str
) -> None:
    bad = _corrupt(book.cast(pa.schema([pa.field(f.name, pa.string()) for f in book.schema])), column, 5, value)
    file = _write_csv(bad, tmp_path / "bad.csv")
    with pytest.raises(ImportRejectedError) as caught:
        import_loan_book(paths, file, SIMULATED_SCHEMA_PATH)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert len(caught.value.problems) == 1, "only the corrupted column is reported"
    assert _landed(paths) == [], "nothing was landed"


def test_a_missing_column_is_named(paths: Paths, book: pa.Table, tmp_path: Path) -> None:
    file = _write_csv(book.drop_columns(["credit_score", "purpose"]), tmp_path / "short.csv")
    with pytest.raises(ImportRejectedError, match="column 'credit_score' is missing"):
        import_loan_book(paths, file, SIMULATED_SCHEMA_PATH)
    assert _landed(paths) == []


def test_an_earlier_book_survives_a_refused_import(paths: Paths, book: pa.Table, tmp_path: Path) -> None:
    good = import_loan_book(paths, _write_csv(book, tmp_path / "good.csv"), SIMULATED_SCHEMA_PATH)
    bad = _write_csv(book.drop_columns(["annual_income"]), tmp_path / "bad.csv")
    with pytest.raises(ImportRejectedError):
        import_loan_book(paths, bad, SIMULATED_SCHEMA_PATH)
    latest = landing.latest_snapshot(paths.landing, landing.LOANS)
    assert latest is not None
    assert latest.name == f"snapshot_id={good.snapshot_id}"
    assert len(_landed(paths)) == 1


def test_unsupported_file_type_and_missing_file(paths: Paths, tmp_path: Path) -> None:
    (tmp_path / "book.xlsx").write_text("x")
    with pytest.raises(ImportRejectedError, match="not supported"):
        import_loan_book(paths, tmp_path / "book.xlsx", SIMULATED_SCHEMA_PATH)
    with pytest.raises(ImportRejectedError, match="no such file"):
        import_loan_book(paths, tmp_path / "absent.csv", SIMULATED_SCHEMA_PATH)


def test_group_not_provided_fills_blanks(paths: Paths, book: pa.Table, tmp_path: Path) -> None:
    text = book.cast(pa.schema([pa.field(f.name, pa.string()) for f in book.schema]))
    file = _write_csv(_corrupt(text, "ethnicity", 0, ""), tmp_path / "blank_group.csv")
    import_loan_book(paths, file, SIMULATED_SCHEMA_PATH)
    snapshot = landing.latest_snapshot(paths.landing, landing.LOANS)
    raw = yaml.safe_load(SIMULATED_SCHEMA_PATH.read_text())
    first = duckdb.sql(f"select ethnicity from read_parquet('{snapshot}/*.parquet') where loan_id = 'L000000001'")
    assert first.fetchone()[0] == raw["columns"]["group"]["not_provided"]


def test_a_book_with_proxies_and_no_group_lands_its_proxies_as_text(
    paths: Paths, book: pa.Table, tmp_path: Path
) -> None:
    """The group column is not needed; the proxy columns are read and landed (a ZIP keeps its leading zero)."""
    raw = yaml.safe_load(SIMULATED_SCHEMA_PATH.read_text())
    raw["columns"].pop("group")
    raw["proxies"] = {"surname": "last_name", "zip": {"name": "zip_code", "source": "ZIP"}}
    schema_file = tmp_path / "proxies.yml"
    schema_file.write_text(yaml.safe_dump(raw))
    surnames = ["Garcia", "", "O'Brien-Smith"] * (book.num_rows // 3) + ["Nguyen"] * (book.num_rows % 3)
    table = book.drop_columns(["ethnicity"]).append_column("last_name", pa.array(surnames))
    table = table.append_column("ZIP", pa.array(["02139"] * book.num_rows))
    import_loan_book(paths, _write_csv(table, tmp_path / "proxies.csv"), schema_file)
    snapshot = landing.latest_snapshot(paths.landing, landing.LOANS)
    landed = duckdb.sql(f"select * from read_parquet('{snapshot}/*.parquet') order by loan_id").fetch_arrow_table()
    assert "ethnicity" not in landed.column_names
    assert landed.column("zip_code").to_pylist()[:2] == ["02139", "02139"]
    assert landed.column("last_name").to_pylist()[:3] == ["Garcia", None, "O'Brien-Smith"], "empty is missing"
