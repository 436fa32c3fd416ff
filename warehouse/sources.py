"""dbt's source declarations, generated from the landing schemas (``python -m warehouse.sources``).

The Parquet schemas in :mod:`warehouse.datasets` and :mod:`warehouse.prediction_log` are what the
writers land; ``models/staging/_staging__sources.yml`` is what dbt (and its docs) says they hold.
The generator rewrites only each table's ``columns`` (name and data type), keeping every
description written by hand, so the two cannot drift apart: a test fails when the file is not
what this module renders. Column types are dbt-friendly names both DuckDB and Spark SQL accept.
Columns that come from the lender's loan-book contract (the loans' own columns, the inputs in
``prediction_log`` and ``reference_inputs``) are not declared: they differ per deployment.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pyarrow as pa
import yaml

from warehouse import datasets, landing
from warehouse.paths import PROJECT_DIR
from warehouse.prediction_log import META_FIELDS

log = logging.getLogger(__name__)

SOURCES_FILE = PROJECT_DIR / "models" / "staging" / "_staging__sources.yml"


def sql_type(arrow_type: pa.DataType) -> str:
    """The column type dbt declares for an Arrow type (names DuckDB and Spark SQL both accept)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_float64(arrow_type):
        return "double"
    for check, name in ((pa.types.is_int8, "tinyint"), (pa.types.is_int16, "smallint"),
                        (pa.types.is_int32, "int"), (pa.types.is_int64, "bigint")):
        if check(arrow_type):
            return name
    raise ValueError(f"no dbt column type for Arrow type {arrow_type}")


def landed_fields() -> dict[str, list[pa.Field]]:
    """Per source table, the columns every deployment lands (the loan-book columns left out)."""
    fields: dict[str, list[pa.Field]] = {name: list(schema) for name, schema in datasets.SCHEMAS.items()}
    fields[landing.PREDICTION_LOG] = list(META_FIELDS)
    fields[datasets.REFERENCE_INPUTS] = [pa.field("model_version", pa.string(), nullable=False)]
    fields[landing.LOANS] = []
    return fields


TABLE_INDENT = " " * 6
"""A source table's ``- name:`` line in the sources file (sources > tables > table)."""


def column_block(fields: list[pa.Field], described: dict[str, str]) -> list[str]:
    """The ``columns:`` lines of one source table (descriptions kept from ``described``)."""
    columns = [{"name": field.name, "data_type": sql_type(field.type),
                **({"description": described[field.name]} if described.get(field.name) else {})}
               for field in fields]
    dumped = yaml.safe_dump(columns, sort_keys=False, width=100, allow_unicode=True)
    return [f"{TABLE_INDENT}  columns:", *(f"{TABLE_INDENT}    {line}" for line in dumped.splitlines())]


def render_text(current_text: str) -> str:
    """The sources file with each table's ``columns`` rewritten from the landed schemas; every other
    line (descriptions, locations, freshness) stays as written, so hand edits and merges keep."""
    fields = landed_fields()
    parsed = yaml.safe_load(current_text)
    tables = {table["name"]: table for source in parsed["sources"] for table in source.get("tables", [])}
    unknown = sorted(set(fields) - set(tables))
    if unknown:
        raise ValueError(f"{SOURCES_FILE.name} declares no source table for landed dataset(s): {', '.join(unknown)}")
    lines = current_text.splitlines()
    out: list[str] = []
    table: str | None = None
    in_columns = False

    def close_table() -> None:
        if table is not None and fields.get(table):
            described = {c["name"]: c.get("description") for c in tables[table].get("columns") or []}
            while out and not out[-1].strip():  # the block goes right after the table's last line
                out.pop()
            out.extend(column_block(fields[table], described))

    for line in lines:
        indent = len(line) - len(line.lstrip())
        if line.strip() and indent <= len(TABLE_INDENT):
            close_table()
            table = line.split("name:", 1)[1].strip() if line.startswith(f"{TABLE_INDENT}- name:") else None
            in_columns = False
        elif table is not None and line.startswith(f"{TABLE_INDENT}  columns:"):
            in_columns = True
            continue
        elif in_columns and (not line.strip() or indent > len(TABLE_INDENT) + 2):
            continue
        else:
            in_columns = False
        out.append(line)
    close_table()
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m warehouse.sources", description=__doc__)
    parser.parse_args(argv)
    SOURCES_FILE.write_text(render_text(SOURCES_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    log.warning("%s: columns rewritten from the landing schemas", SOURCES_FILE.relative_to(PROJECT_DIR))


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    main()
