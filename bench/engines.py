"""Benchmark (issue #17, item 8): the same work on DuckDB and on Spark ``local[2]``, same run.

* ``scoring``: batch scoring of one Parquet file of simulated applications (``--rows``, 10M by
  default) by the champion's compiled SQL: the model compiled from its PMML by ``ml.export.sql``
  and rendered by sqlglot in DuckDB's dialect for DuckDB (``COPY (query) TO parquet``) and in
  Spark's for Spark (``spark.sql(query).write.parquet``), both with 2 threads/cores. The data and
  the models come from ``bench/scoring.py``'s phases (same seeds, same files). The two outputs are
  then compared row by row (joined on the loan id).
* ``statistics``: the monitoring marts' statistics over the scored rows, as one query each engine
  runs directly (the dbt monitoring build on Spark is not available yet): per group (home
  ownership x purpose) and window (a 100-way bucket of the loan id's digits), the counts, positives,
  expected negatives and false positives (estimated FPR), the binomial interval of the positives
  around the overall rate (``lg_binom_ppf``), and per group the KS statistic D of the credit score
  between flagged and unflagged applications with its p-value (``lg_ks_2samp_pvalue``), the same
  SQL text on both engines, SciPy's functions registered on both (``warehouse.dbt_udfs``,
  ``warehouse.spark_session``). The results are compared to 1e-9.

Each engine runs in a fresh process. ``seconds`` is the work itself in wall time (Spark's
start-up is recorded apart as ``startup_seconds``); ``cpu_seconds`` the CPU time over the same span
(for Spark: the Python driver plus the JVM, read from /proc, where the work and the UDFs' Python
workers' callers run; the Python workers themselves are not counted); ``peak_rss_mb`` the phase
process's peak resident memory, ``jvm_peak_rss_mb`` the JVM's.

    .venv/bin/python bench/engines.py --rows 10000000 --out bench/results/engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import record
import scoring

MODELS = scoring.MODELS
RELATION = scoring.RELATION
KEEP = scoring.KEEP
THRESHOLD = 0.2
"""Decision threshold of the statistics query (flagged = probability >= this)."""
ALPHA = 0.01


def run_phase(workdir: Path, name: str, **arguments: Any) -> dict[str, Any]:
    """One phase of this script in a fresh interpreter (``record.run_phase``)."""
    return record.run_phase(workdir, name, script=Path(__file__), **arguments)


def main() -> None:
    parser = record.phase_parser(__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    record.run_phased(parser.parse_args(), PHASES, benchmark, prefix="lendguard-bench-engines-")


def benchmark(args: argparse.Namespace, workdir: Path) -> None:
    models = [MODELS[name] for name in args.models]
    prepared = scoring.run_phase(workdir, "prepare", train_rows=args.train_rows,
                                 models=models)
    applications = scoring.run_phase(workdir, "applications", rows=args.rows)
    print(json.dumps({"prepared": prepared, "applications": applications}))
    results: list[dict[str, Any]] = []
    for name, model in zip(args.models, models, strict=True):
        runs = {engine: run_phase(workdir, f"score_{engine}", model=model, rows=args.rows)
                for engine in ("duckdb", "spark")}
        comparison = run_phase(workdir, "compare", left=runs["duckdb"]["output"], right=runs["spark"]["output"],
                               key=KEEP, columns=["probability"])
        for engine, run in runs.items():
            row = {"work": "scoring", "model": name, "candidate": model, "engine": engine, "rows": args.rows, **run,
                   "rows_per_second": round(args.rows / run["seconds"])}
            results.append(row)
            print(json.dumps(row))
        results.append({"work": "scoring", "model": name, "comparison": comparison})
    # The statistics over the first model's scores (the champion the demo chooses: logistic).
    scores = f"scores-{models[0]}-{args.rows}-duckdb.parquet"
    stats = {engine: run_phase(workdir, f"statistics_{engine}", rows=args.rows, scores=scores)
             for engine in ("duckdb", "spark")}
    for engine, run in stats.items():
        row = {"work": "statistics", "model": args.models[0], "engine": engine, "rows": args.rows, **run,
               "rows_per_second": round(args.rows / run["seconds"])}
        results.append(row)
        print(json.dumps(row))
    for table in ("cells", "ks"):
        comparison = run_phase(workdir, "compare", left=stats["duckdb"][table], right=stats["spark"][table],
                               key="key", columns=STATISTIC_COLUMNS[table])
        results.append({"work": f"statistics_{table}", "comparison": comparison})
    record.emit({
        "command": record.command(),
        "machine": {**record.machine(), "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3]},
        "prepare": prepared,
        "applications": applications,
        "results": results,
    }, args.out)


# ----- the phases (each in a fresh process) ---------------------------------------------------------
def _model_sql(workdir: Path, model: str, dialect: str) -> str:
    """The champion's scoring query for ``dialect``, from the PMML the prepare phase exported."""
    from ml.export.sql import compile_pmml, to_sql  # noqa: PLC0415 - fresh process per phase

    return to_sql(compile_pmml(workdir / f"{model}.pmml", relation=RELATION, keep=[KEEP]), dialect)


def _spark(workdir: Path) -> tuple[Any, float]:
    """lendguard's local Spark (``local[2]``) with its data under ``workdir``, and its start-up seconds."""
    from warehouse.paths import Paths  # noqa: PLC0415
    from warehouse.spark_session import local_session  # noqa: PLC0415 - pyspark is optional

    started = time.perf_counter()
    spark = local_session(Paths.from_env({"LENDGUARD_DATA_DIR": str(workdir / "spark-data")}),
                          app_name="lendguard-bench")
    return spark, time.perf_counter() - started


def _jvm_cpu_seconds(spark: Any) -> float:
    """CPU seconds the Spark JVM (this process's child, where the work runs) has used, all threads."""
    fields = Path(f"/proc/{spark.sparkContext._gateway.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _jvm_peak_rss_mb(spark: Any) -> float:
    status = Path(f"/proc/{spark.sparkContext._gateway.proc.pid}/status").read_text()
    return round(int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024, 1)


def _timed(work: Any, spark: Any = None) -> tuple[float, float]:
    """Wall and CPU seconds of ``work()``: this process's CPU, plus the JVM's with ``spark``."""
    jvm = _jvm_cpu_seconds(spark) if spark is not None else 0.0
    started, cpu = time.perf_counter(), time.process_time()
    work()
    cpu = time.process_time() - cpu + (_jvm_cpu_seconds(spark) - jvm if spark is not None else 0.0)
    return round(time.perf_counter() - started, 3), round(cpu, 3)


def phase_score_duckdb(workdir: Path, *, model: str, rows: int) -> None:
    import duckdb  # noqa: PLC0415

    source, output = workdir / f"applications-{rows}.parquet", f"scores-{model}-{rows}-duckdb.parquet"
    query = _model_sql(workdir, model, "duckdb")
    with duckdb.connect() as con:
        con.execute("set threads = 2")
        con.execute(f"create view {RELATION} as select * from read_parquet('{source}')")
        seconds, cpu = _timed(lambda: con.execute(f"copy ({query}) to '{workdir / output}' (format parquet)"))
    record.write_result(workdir, "score_duckdb", {"output": output, "seconds": seconds, "cpu_seconds": cpu,
                                             "sql_chars": len(query)})


def phase_score_spark(workdir: Path, *, model: str, rows: int) -> None:
    source, output = workdir / f"applications-{rows}.parquet", f"scores-{model}-{rows}-spark"
    query = _model_sql(workdir, model, "spark")
    spark, startup = _spark(workdir)
    spark.read.parquet(str(source)).createOrReplaceTempView(RELATION)
    seconds, cpu = _timed(lambda: spark.sql(query).write.mode("overwrite").parquet(str(workdir / output)), spark)
    result = {"output": output, "seconds": seconds, "cpu_seconds": cpu, "startup_seconds": round(startup, 2),
              "jvm_peak_rss_mb": _jvm_peak_rss_mb(spark), "sql_chars": len(query)}
    spark.stop()
    record.write_result(workdir, "score_spark", result)


STATISTIC_COLUMNS = {
    "cells": ["n", "positives", "expected_negatives", "expected_false_positives", "estimated_fpr",
              "positives_low", "positives_high"],
    "ks": ["n_flagged", "n_unflagged", "ks_d", "ks_p_value"],
}


def statistics_queries(applications: str, scores: str) -> dict[str, str]:
    """The statistics as SQL both engines run unchanged (``applications``/``scores``: relation names)."""
    scored = f"""
        select a.home_ownership || '/' || a.purpose as fairness_group,
            cast(substr(a.{KEEP}, -2) as int) as window_key, a.credit_score, s.probability,
            case when s.probability >= {THRESHOLD} then 1 else 0 end as flagged
        from {applications} as a inner join {scores} as s on s.{KEEP} = a.{KEEP}
    """
    cells = f"""
        with scored as ({scored}),
        cells as (
            select fairness_group, window_key, count(*) as n, sum(flagged) as positives,
                sum(1 - probability) as expected_negatives,
                sum(case when flagged = 1 then 1 - probability else 0 end) as expected_false_positives
            from scored group by fairness_group, window_key
        ),
        overall as (select cast(sum(positives) as double) / sum(n) as rate from cells)
        select fairness_group || '#' || cast(window_key as string) as key, n, positives, expected_negatives,
            expected_false_positives, expected_false_positives / nullif(expected_negatives, 0) as estimated_fpr,
            lg_binom_ppf(cast({ALPHA} as double) / 2, n, overall.rate) as positives_low,
            lg_binom_ppf(1 - cast({ALPHA} as double) / 2, n, overall.rate) as positives_high
        from cells cross join overall
    """
    ks = f"""
        with scored as ({scored}),
        counts as (
            select fairness_group, credit_score, sum(flagged) as flagged_at, sum(1 - flagged) as unflagged_at
            from scored group by fairness_group, credit_score
        ),
        cdf as (
            select fairness_group,
                sum(flagged_at) over (partition by fairness_group order by credit_score
                    rows between unbounded preceding and current row) as flagged_le,
                sum(unflagged_at) over (partition by fairness_group order by credit_score
                    rows between unbounded preceding and current row) as unflagged_le,
                sum(flagged_at) over (partition by fairness_group) as n_flagged,
                sum(unflagged_at) over (partition by fairness_group) as n_unflagged
            from counts
        ),
        ks as (
            select fairness_group as key, max(n_flagged) as n_flagged, max(n_unflagged) as n_unflagged,
                max(abs(cast(flagged_le as double) / n_flagged - cast(unflagged_le as double) / n_unflagged)) as ks_d
            from cdf where n_flagged > 0 and n_unflagged > 0
            group by fairness_group
        )
        select key, n_flagged, n_unflagged, ks_d,
            lg_ks_2samp_pvalue(ks_d, cast(n_flagged as bigint), cast(n_unflagged as bigint)) as ks_p_value
        from ks
    """
    return {"cells": cells, "ks": ks}


def phase_statistics_duckdb(workdir: Path, *, rows: int, scores: str) -> None:
    import duckdb  # noqa: PLC0415

    from warehouse import dbt_udfs  # noqa: PLC0415

    queries = statistics_queries("applications", "scores")
    result: dict[str, Any] = {"seconds": 0.0, "cpu_seconds": 0.0}
    with duckdb.connect() as con:
        con.execute("set threads = 2")
        dbt_udfs.register(con)
        applications = workdir / f"applications-{rows}.parquet"
        con.execute(f"create view applications as select * from read_parquet('{applications}')")
        con.execute(f"create view scores as select * from read_parquet('{workdir / scores}')")
        for table, query in queries.items():
            output = f"statistics-{table}-duckdb.parquet"
            seconds, cpu = _timed(
                lambda q=query, o=output: con.execute(f"copy ({q}) to '{workdir / o}' (format parquet)"))
            result |= {table: output, f"{table}_seconds": seconds}
            result["seconds"] += seconds
            result["cpu_seconds"] += cpu
    record.write_result(workdir, "statistics_duckdb", result)


def phase_statistics_spark(workdir: Path, *, rows: int, scores: str) -> None:
    spark, startup = _spark(workdir)
    spark.read.parquet(str(workdir / f"applications-{rows}.parquet")).createOrReplaceTempView("applications")
    spark.read.parquet(str(workdir / scores)).createOrReplaceTempView("scores")
    result: dict[str, Any] = {"seconds": 0.0, "cpu_seconds": 0.0, "startup_seconds": round(startup, 2)}
    for table, query in statistics_queries("applications", "scores").items():
        output = f"statistics-{table}-spark"
        seconds, cpu = _timed(
            lambda q=query, o=output: spark.sql(q).write.mode("overwrite").parquet(str(workdir / o)), spark)
        result |= {table: output, f"{table}_seconds": seconds}
        result["seconds"] += seconds
        result["cpu_seconds"] += cpu
    result["jvm_peak_rss_mb"] = _jvm_peak_rss_mb(spark)
    spark.stop()
    record.write_result(workdir, "statistics_spark", result)


def phase_compare(workdir: Path, *, left: str, right: str, key: str, columns: list[str]) -> None:
    """Every row of ``left`` against ``right`` (DuckDB's and Spark's), joined on ``key``."""
    import duckdb  # noqa: PLC0415

    def scan(name: str) -> str:
        path = workdir / name
        return f"read_parquet('{path / '*.parquet' if path.is_dir() else path}')"

    worst = ", ".join(f"max(abs(l.{c} - r.{c})) as {c}" for c in columns)
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '2GB'; set temp_directory = '{workdir / 'duckdb-tmp'}'")
        counts = con.execute(
            f"select count(*), count(r.{key}), (select count(*) from {scan(right)}) "
            f"from {scan(left)} as l left join {scan(right)} as r using ({key})").fetchone()
        differences = con.execute(
            f"select {worst} from {scan(left)} as l inner join {scan(right)} as r using ({key})").df()
    assert counts is not None
    record.write_result(workdir, "compare", {
        "left_rows": counts[0], "matched_rows": counts[1], "right_rows": counts[2],
        "max_abs_diff": {c: float(differences[c][0]) for c in columns},
    })


PHASES = {
    "score_duckdb": phase_score_duckdb,
    "score_spark": phase_score_spark,
    "statistics_duckdb": phase_statistics_duckdb,
    "statistics_spark": phase_statistics_spark,
    "compare": phase_compare,
}


if __name__ == "__main__":
    main()
