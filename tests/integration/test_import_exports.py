"""A lender's export imports as it is written: mapped headers, US dates, thousands separators,
another delimiter, encoding or quote, its own missing-value markers; a file that is not CSV text is
refused in one line, the CLI exits non-zero, and nothing lands."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from warehouse import landing
from warehouse.importer import ImportRejectedError, import_loan_book
from warehouse.loan_book import LoanBookSchema, LoanBookSchemaError
from warehouse.paths import Paths
from warehouse.publish import connect_snapshot

HEADERS = {"account_ref": "AcctNo", "opened_on": "Open Date", "race": "Race", "status": "Loan Status",
           "income": "Annual Income", "score": "FICO", "channel": "Channel"}
"""Contract column -> the export's header."""


def _contract(**file: Any) -> dict[str, Any]:
    """The credit union's contract, each column declared with the header its export uses."""
    return {
        "name": "credit_union_export",
        **({"file": file} if file else {}),
        "columns": {
            "id": {"name": "account_ref", "source": "AcctNo"},
            "date": {"name": "opened_on", "source": "Open Date", "format": "%m/%d/%Y"},
            "group": {"name": "race", "source": "Race", "values": ["A", "B", "C", "unknown"],
                      "not_provided": "unknown"},
        },
        "outcome": {"column": "status", "source": "Loan Status", "positive": ["charged_off"], "negative": ["paid"]},
        "numeric_features": [{"name": "income", "source": "Annual Income", "min": 0},
                             {"name": "score", "source": "FICO", "min": 300, "max": 850, "integer": True}],
        "categorical_features": [{"name": "channel", "source": "Channel", "values": ["branch", "online", "broker"]}],
    }


def _loans(rows: int, seed: int = 1) -> list[dict[str, Any]]:
    """Loans as typed values (contract names), with a default risk that depends on score and income."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.8, 0.5, rows).round(2)
    score = rng.integers(450, 840, rows)
    risk = 1 / (1 + np.exp(-(-1.0 - (score - 650) / 60 - (np.log(income) - 10.8))))
    opened = [date(2023, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 700, rows)]
    return [
        {"account_ref": f"CU-{i:06d}", "opened_on": opened[i],
         "race": str(rng.choice(["A", "B", "C", "N/A"], p=[0.6, 0.25, 0.1, 0.05])),
         "status": "charged_off" if rng.random() < risk[i] else "paid",
         "income": float(income[i]), "score": int(score[i]),
         "channel": str(rng.choice(["branch", "online", "broker"]))}
        for i in range(rows)
    ]


def _export(loans: list[dict[str, Any]], *, delimiter: str = ",", quote: str = '"', decimal: str = ".",
            thousands: str = ",") -> str:
    """The loans as the credit union's system writes them: its headers, US dates, grouped numbers."""
    def number(value: float) -> str:
        grouped = f"{value:,.2f}".replace(",", "\0").replace(".", decimal)
        return grouped.replace("\0", thousands)

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quotechar=quote, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(HEADERS.values())
    for loan in loans:
        writer.writerow([loan["account_ref"], f"{loan['opened_on']:%m/%d/%Y}", loan["race"], loan["status"],
                         number(loan["income"]), f"{loan['score']:,}".replace(",", thousands), loan["channel"]])
    return out.getvalue()


def _schema_file(tmp_path: Path, contract: dict[str, Any]) -> Path:
    path = tmp_path / "export.yml"
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    return path


def _landed(paths: Paths) -> list[Path]:
    folder = paths.landing / landing.LOANS
    return sorted(folder.glob("snapshot_id=*")) if folder.exists() else []


def _landed_rows(paths: Paths) -> list[tuple[Any, ...]]:
    [snapshot] = _landed(paths)
    return duckdb.sql(
        f"select account_ref, opened_on, race, status, income, score, channel "
        f"from read_parquet('{snapshot}/*.parquet') order by account_ref"
    ).fetchall()


def _expected_rows(loans: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(loan["account_ref"], loan["opened_on"], "unknown" if loan["race"] == "N/A" else loan["race"],
             loan["status"], pytest.approx(loan["income"]), loan["score"], loan["channel"]) for loan in loans]


def lendguard(paths: Paths, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LENDGUARD_DATA_DIR": str(paths.data_dir), "MLFLOW_TRACKING_URI": paths.tracking_uri,
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "lendguard.cli", *args], env=env, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.mark.slow
def test_an_export_with_mapped_headers_us_dates_and_thousands_imports_and_builds(paths: Paths, tmp_path: Path) -> None:
    loans = _loans(3000)
    export = tmp_path / "loans_export.csv"
    export.write_text(_export(loans))
    assert re.search(r'"\d{1,3}(,\d{3})+\.\d\d"', export.read_text()), "numbers carry thousands separators"
    schema = _schema_file(tmp_path, _contract(thousands=",", missing=["N/A"]))

    imported = lendguard(paths, "import", str(export), "--schema", str(schema))
    assert imported.returncode == 0, imported.stderr
    assert "imported 3,000 loans" in imported.stdout
    assert _landed_rows(paths) == _expected_rows(sorted(loans, key=lambda loan: loan["account_ref"]))

    built = lendguard(paths, "build")
    assert built.returncode == 0, built.stdout + built.stderr
    with connect_snapshot(paths) as con:
        columns = [row[0] for row in con.execute("describe train_loans").fetchall()]
        groups = dict(con.execute("select fairness_group, count(*) from train_loans group by 1").fetchall())
        first = con.execute("select application_date, income from train_loans where loan_id = 'CU-000000'").fetchone()
    assert columns[:4] == ["loan_id", "application_date", "fairness_group", "defaulted"]
    assert {"income", "score", "channel"} <= set(columns)
    assert set(groups) == {"A", "B", "C", "unknown"}, "'N/A' was read as missing and became `not_provided`"
    assert first == (loans[0]["opened_on"], pytest.approx(loans[0]["income"]))


@pytest.mark.parametrize(
    ("file", "written"),
    [
        ({"delimiter": ";", "decimal": ",", "thousands": ".", "missing": ["N/A"]},
         {"delimiter": ";", "decimal": ",", "thousands": "."}),
        ({"delimiter": "|", "quote": "'", "thousands": " ", "missing": ["N/A"]},
         {"delimiter": "|", "quote": "'", "thousands": " "}),
        ({"delimiter": "\t", "decimal": ",", "thousands": "'", "missing": ["N/A"]},
         {"delimiter": "\t", "decimal": ",", "thousands": "'"}),
    ],
    ids=["semicolon-decimal-comma", "pipe-single-quote-space-thousands", "tab-apostrophe-thousands"],
)
def test_delimiter_quote_and_separators_are_read_as_declared(
    paths: Paths, tmp_path: Path, file: dict[str, Any], written: dict[str, str]
) -> None:
    loans = _loans(200, seed=2)
    export = tmp_path / "loans.csv"
    export.write_text(_export(loans, **written))
    import_loan_book(paths, export, _schema_file(tmp_path, _contract(**file)))
    assert _landed_rows(paths) == _expected_rows(sorted(loans, key=lambda loan: loan["account_ref"]))


def test_latin1_export_and_gzip_renamed_csv_are_read(paths: Paths, tmp_path: Path) -> None:
    contract = _contract(thousands=",", missing=["N/A"], encoding="latin-1")
    contract["categorical_features"][0]["values"].append("Sucursal Peñón")
    loans = _loans(50, seed=3)
    loans[0]["channel"] = "Sucursal Peñón"
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(_export(loans).encode("latin-1"))
    import_loan_book(paths, latin1, _schema_file(tmp_path, contract))
    assert ("CU-000000", "Sucursal Peñón") in {(row[0], row[6]) for row in _landed_rows(paths)}

    gzipped = tmp_path / "gzipped.csv"  # gzip-compressed, still named .csv
    gzipped.write_bytes(gzip.compress(_export(loans).encode("latin-1")))
    import_loan_book(paths, gzipped, _schema_file(tmp_path, contract))
    assert len(_landed(paths)) == 2


def test_the_format_is_not_part_of_the_contract(paths: Paths, tmp_path: Path) -> None:
    """Re-exporting with other headers or separators changes neither the fingerprint nor what lands."""
    mapped = LoanBookSchema.from_dict(_contract(delimiter=";", decimal=",", thousands="."))
    plain = _contract()
    for entry in (plain["columns"]["id"], plain["columns"]["date"], plain["columns"]["group"], plain["outcome"],
                  *plain["numeric_features"], *plain["categorical_features"]):
        entry.pop("source")
    plain["columns"]["date"].pop("format")
    assert mapped.fingerprint() == LoanBookSchema.from_dict(plain).fingerprint()
    assert LoanBookSchema.from_dict(mapped.to_dict()) == mapped, "the YAML form round-trips with its file format"

    export = tmp_path / "loans.csv"
    export.write_text(_export(_loans(20), delimiter=";", decimal=",", thousands="."))
    contract = _contract(delimiter=";", decimal=",", thousands=".", missing=["N/A"])
    import_loan_book(paths, export, _schema_file(tmp_path, contract))
    [snapshot] = _landed(paths)
    landed_contract = yaml.safe_load((snapshot / landing.SNAPSHOT_SCHEMA_FILE).read_text())
    assert "file" not in landed_contract
    assert landed_contract["columns"]["id"] == "account_ref", "the landed data has the contract's names"


def test_every_problem_of_an_export_is_listed_naming_its_header(paths: Paths, tmp_path: Path) -> None:
    loans = _loans(30, seed=4)
    rows = list(csv.reader(io.StringIO(_export(loans))))
    rows[3][1] = f"{loans[2]['opened_on']:%Y-%m-%d}"  # line 4: an ISO date, not the declared US format
    rows[5][5] = "7,12"  # line 6: a misplaced thousands separator
    rows[7].append("surplus")  # line 8: a field too many
    rows.append(["CU-999999", "01/02/2024"])  # line 32: cut short
    export = tmp_path / "loans.csv"
    with export.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    schema = _schema_file(tmp_path, _contract(thousands=",", missing=["N/A"]))
    with pytest.raises(ImportRejectedError) as refused:
        import_loan_book(paths, export, schema)
    problems = refused.value.problems
    assert "1 line (first: line 8) cannot be read: Expected Number of Columns: 7 Found: 8" in problems
    assert "1 line (first: line 32) cannot be read: Expected Number of Columns: 7 Found: 2" in problems
    assert (f"column 'Open Date' (opened_on) is not a date in the declared format '%m/%d/%Y': 1 row "
            f"(e.g. '{loans[2]['opened_on']:%Y-%m-%d}')") in problems
    assert ("column 'FICO' (score) is not a number (decimal '.', thousands ','): 1 row (e.g. '7,12')"
            in problems)
    assert len(problems) == 4, problems
    assert _landed(paths) == []

    missing = tmp_path / "renamed.csv"
    missing.write_text(_export(loans).replace("AcctNo", "Account"))
    with pytest.raises(ImportRejectedError) as refused:
        import_loan_book(paths, missing, schema)
    assert refused.value.problems == ["column 'AcctNo' (account_ref) is missing"]


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("loans.csv", text)
    return buffer.getvalue()


def _parquet(text: str) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"AcctNo": ["CU-1"]}), buffer)
    return buffer.getvalue()


REFUSALS = {
    "empty.csv": (lambda _: b"", "the file is empty (0 bytes)"),
    "binary.csv": (lambda _: bytes(range(256)) * 40, "the file is binary, not CSV text (a NUL byte at offset 0)"),
    "archive.csv": (_zip, "the file is a ZIP archive (an Excel .xlsx workbook is one), not CSV text"),
    "bzipped.csv": (lambda text: bz2.compress(text.encode()), "the file is bzip2-compressed, not CSV text"),
    "columnar.csv": (_parquet, "the file is a Parquet file, not CSV text: rename it .parquet"),
    "empty-inside.csv": (lambda _: gzip.compress(b""), "the file is gzip-compressed and holds nothing (0 bytes)"),
    "text.parquet": (lambda text: text.encode(), "the file is not Parquet (it does not start with PAR1)"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_a_file_that_is_not_csv_text_is_refused_in_one_line(paths: Paths, tmp_path: Path, name: str) -> None:
    content, reason = REFUSALS[name]
    file = tmp_path / name
    file.write_bytes(content(_export(_loans(5))))
    refused = lendguard(paths, "import", str(file), "--schema", str(_schema_file(tmp_path, _contract())))
    assert refused.returncode == 1
    assert reason in refused.stderr
    error_lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(error_lines) <= 3, refused.stderr  # the step line, "error: … nothing was landed:", the reason
    assert "Traceback" not in refused.stderr
    assert "sniff" not in refused.stderr
    assert _landed(paths) == []


def test_a_format_the_reader_cannot_follow_is_refused_naming_the_key(tmp_path: Path) -> None:
    for file, message in [({"encoding": "cp1252"}, "file.encoding 'cp1252' is not supported"),
                          ({"decimal": ",", "thousands": ","}, "are both ','"),
                          ({"delimiter": ";;"}, "file.delimiter must be one character"),
                          ({"separator": ";"}, "unknown key(s) ['separator']")]:
        with pytest.raises(LoanBookSchemaError, match=re.escape(message)):
            LoanBookSchema.from_dict(_contract(**file))
    two_for_one = _contract()
    two_for_one["numeric_features"][1]["source"] = "Annual Income"
    with pytest.raises(LoanBookSchemaError, match=re.escape("file header(s) ['Annual Income'] would be read for two")):
        LoanBookSchema.from_dict(two_for_one)
