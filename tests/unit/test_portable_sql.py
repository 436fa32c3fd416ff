"""The dbt models stay portable: no engine's own SQL outside the dispatched macros (macros/).

One project builds on DuckDB and on Spark (README "Running on Spark"). A model that spells a function
only one engine knows builds on that engine alone, and nothing shows it until someone builds on the
other. So this test reads every model (comments left out) for the functions and syntax only DuckDB or
only Spark has; the macros in macros/ are where each engine's spelling lives (adapter.dispatch).
"""

from __future__ import annotations

import re
from pathlib import Path

from warehouse.paths import PROJECT_DIR

DUCKDB_ONLY = {
    "read_parquet": r"\bread_parquet\s*\(",
    "json_object": r"\bjson_object\s*\(",
    "json_group_object": r"\bjson_group_object\s*\(",
    "grouping(a, b) bitmask": r"\bgrouping\s*\([^()]*,",
    "list(...)": r"\blist\s*\(",
    "list_* functions": r"\blist_\w+\s*\(",
    "struct literal {'k': v}": r"\{\s*'\w+'\s*:",
    "struct_pack": r"\bstruct_pack\s*\(",
    "generate_series": r"\bgenerate_series\s*\(",
    "unnest": r"\bunnest\s*\(",
    "qualify": r"\bqualify\b",
    "select * exclude": r"\*\s*exclude\b",
    "select * replace": r"\*\s*replace\b",
    "epoch()": r"\bepoch(_ms|_us|_ns)?\s*\(",
    "date_diff": r"\bdate_diff\s*\(",
    "strftime": r"\bstrftime\s*\(",
    "strptime": r"\bstrptime\s*\(",
    ":: cast": r"::",
    "ubigint / hugeint": r"\b(ubigint|hugeint)\b",
    "varchar type": r"\bvarchar\b",
    "aggregate filter (where ...)": r"\bfilter\s*\(\s*where\b",
    "arg_max / arg_min": r"\barg_(max|min)\s*\(",
    "quantile_cont / quantile_disc": r"\bquantile_(cont|disc)\s*\(",
    "string_agg": r"\bstring_agg\s*\(",
    "regexp_matches": r"\bregexp_matches\s*\(",
    "delete+insert strategy": r"delete\+insert",
}
"""What DuckDB understands and Spark does not (or understands differently)."""

SPARK_ONLY = {
    "parquet.`path`": r"\bparquet\s*\.\s*`",
    "conv": r"\bconv\s*\(",
    "grouping_id": r"\bgrouping_id\s*\(",
    "named_struct": r"\bnamed_struct\s*\(",
    "collect_list / collect_set": r"\bcollect_(list|set)\s*\(",
    "explode": r"\bexplode(_outer)?\s*\(",
    "sequence": r"\bsequence\s*\(",
    "unix_timestamp / from_unixtime": r"\b(unix_timestamp|from_unixtime)\s*\(",
    "to_json / from_json": r"\b(to_json|from_json)\s*\(",
    "map_from_entries": r"\bmap_from_entries\s*\(",
    "months_between": r"\bmonths_between\s*\(",
    "datediff (Spark's)": r"(?<![.\w])datediff\s*\(",
    "input_file_name / _metadata": r"\b(input_file_name\s*\(|_metadata\b)",
    "percentile_approx": r"\bpercentile_approx\s*\(",
    "nvl": r"\bnvl2?\s*\(",
    "insert_overwrite strategy": r"insert_overwrite",
}
"""What Spark understands and DuckDB does not (or understands differently)."""

STILL_UNPORTED: dict[str, set[str]] = {}
"""Models that still hold engine-only SQL, with what (empty when the project is portable)."""

_COMMENTS = re.compile(r"\{#.*?#\}|--[^\n]*", re.DOTALL)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_SQL_ONLY = {"struct literal {'k': v}"}
"""Patterns that Jinja's own syntax also matches (a dict argument): looked for outside Jinja only."""


def engine_only_sql(text: str) -> set[str]:
    """The names of the engine-only functions and syntax ``text`` uses (comments left out)."""
    code = _COMMENTS.sub(" ", text)
    sql = _JINJA.sub(" ", code)
    return {name for name, pattern in {**DUCKDB_ONLY, **SPARK_ONLY}.items()
            if re.search(pattern, sql if name in _SQL_ONLY else code, re.IGNORECASE)}


def models_with_engine_only_sql(models: Path) -> dict[str, set[str]]:
    found = {}
    for path in sorted(models.rglob("*.sql")):
        names = engine_only_sql(path.read_text(encoding="utf-8"))
        if names:
            found[str(path.relative_to(models))] = names
    return found


def test_no_model_uses_an_engines_own_sql_outside_the_macros() -> None:
    assert models_with_engine_only_sql(PROJECT_DIR / "models") == STILL_UNPORTED


def test_the_patterns_find_each_engines_spelling_and_skip_comments_and_portable_sql() -> None:
    assert engine_only_sql("select * exclude (a), list({'k': v} order by v) from x qualify y") == {
        "select * exclude", "list(...)", "struct literal {'k': v}", "qualify"}
    assert engine_only_sql("select * replace (cast(n as double) as n) from x") == {"select * replace"}
    assert engine_only_sql("select grouping_id(a, b), conv(h, 16, 10) from parquet.`/x/*.parquet`") == {
        "grouping_id", "conv", "parquet.`path`"}
    assert engine_only_sql("select grouping(a, b), cast(x as varchar), y::int") == {
        "grouping(a, b) bitmask", "varchar type", ":: cast"}
    portable = """
        {#- json_object(...) in a comment; {{ monitoring_json_object({'k': 'v'}) }} is a macro call -#}
        -- list(x) in a comment
        select grouping(a), cast(b as {{ dbt.type_string() }}), {{ grouping_bits(['a', 'b']) }}
        from {{ ref('m') }}
    """
    assert engine_only_sql(portable) == set()
