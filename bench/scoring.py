"""Benchmark: batch scoring with the compiled SQL in DuckDB, scikit-learn and orbital's SQL.

Both model families of the search space (logistic regression and gradient-boosted trees, built by
`ml.train.build_pipeline`) are fitted once on simulated loans whose features come from the
project's feature macro (rendered by dbt, run in DuckDB), exported to PMML and compiled to SQL.
Then, for each size, one Parquet file of simulated applications (features by the same SQL, written
block by block) is scored by

* ``sql``: our compiled SQL in DuckDB, ``COPY (query) TO parquet`` (at 1 and 2 DuckDB threads);
* ``sklearn``: the fitted pipeline's ``predict_proba``, one thread, on Parquet batches of
  ``--chunk-rows`` rows read with pyarrow, results written back to Parquet;
* ``orbital``: orbital's SQL for the same fitted pipeline (generated in the benchmark-only venv
  `bench/.venv-orbital`, see `bench/orbital_sql.py`), run in the same DuckDB as ours.

Each run is a fresh process. ``seconds`` is the scoring itself (read the Parquet file, score, write
the Parquet result) in wall time; ``cpu_seconds`` the same span in CPU time summed over the
process's threads (robust to other processes on the machine: for one thread it is the work done);
``peak_rss_mb`` the process's peak resident memory (interpreter and imports included). With
``--repeat`` each engine runs that many times and the fastest is kept (all times are recorded).
Every result is then compared with scikit-learn's on all rows (joined on the loan id): the largest
absolute difference and the number of decisions that differ at ``--decision-threshold``.

    .venv/bin/python bench/scoring.py --rows 1000000 10000000 --repeat 2 --out bench/results/scoring.json

orbital is optional: without `bench/.venv-orbital` (see `bench/orbital_sql.py`) its rows are left out
and the reason is recorded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import record

BENCH_DIR = record.BENCH_DIR
PROJECT_DIR = record.PROJECT_DIR
ORBITAL_VENV = BENCH_DIR / ".venv-orbital"
MODELS = {"logistic": "logreg_c0.1", "trees": "hgb_depth3"}
"""Benchmark model → candidate of `ml.train.SEARCH_SPACE` (the logistic one the demo selects)."""
RELATION = "model_features"
KEEP = "loan_id"


def run_phase(workdir: Path, name: str, **arguments: Any) -> dict[str, Any]:
    """One phase of this script in a fresh interpreter (``record.run_phase``)."""
    return record.run_phase(workdir, name, script=Path(__file__), **arguments)


def orbital_sql(workdir: Path, model: str, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    """orbital's SQL for the pickled pipeline, from the benchmark-only venv (or why there is none)."""
    python = ORBITAL_VENV / "bin" / "python"
    if not python.exists():
        return {"error": f"no {python}: create it as `bench/orbital_sql.py` says"}
    out = workdir / f"orbital-{model}.sql"
    run = subprocess.run(
        [str(python), str(BENCH_DIR / "orbital_sql.py"), "--pipeline", str(workdir / f"{model}.pkl"),
         "--numeric", *numeric, "--categorical", *categorical, "--keep", KEEP, "--table", RELATION,
         "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=PROJECT_DIR,
    )
    lines = run.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": (run.stderr or run.stdout)[-2000:]}
    if run.returncode == 0:
        result["sql_file"] = out.name
    return result


def main() -> None:
    parser = record.phase_parser(__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--duckdb-threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-rows", type=int, default=500_000, help="scikit-learn batch size")
    parser.add_argument("--decision-threshold", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=1, help="score each engine this many times; keep the fastest")
    parser.add_argument("--no-orbital", action="store_true")
    record.run_phased(parser.parse_args(), PHASES, benchmark, prefix="lendguard-bench-scoring-")


def benchmark(args: argparse.Namespace, workdir: Path) -> None:
    models = [MODELS[name] for name in args.models]
    prepared = run_phase(workdir, "prepare", train_rows=args.train_rows, models=models)
    print(json.dumps(prepared))
    generated: dict[str, dict[str, Any]] = {}
    for model in models:
        if args.no_orbital:
            generated[model] = {"error": "skipped (--no-orbital)"}
        else:
            generated[model] = orbital_sql(workdir, model, prepared["numeric"], prepared["categorical"])
        print(json.dumps({"orbital_sql": model, **generated[model]})[:2000])
    results: list[dict[str, Any]] = []
    data: dict[int, dict[str, Any]] = {}
    for rows in args.rows:
        data[rows] = run_phase(workdir, "applications", rows=rows)
        print(json.dumps(data[rows]))
        for name, model in zip(args.models, models, strict=True):
            runs: list[dict[str, Any]] = [{"engine": "sklearn", "threads": 1}]
            runs += [{"engine": "sql", "threads": t} for t in args.duckdb_threads]
            if "error" not in generated[model]:
                runs += [{"engine": "orbital", "threads": t} for t in args.duckdb_threads]
            for run in runs:
                attempts = [run_phase(workdir, "score", model=model, rows=rows, chunk_rows=args.chunk_rows, **run)
                            for _ in range(args.repeat)]
                # The fastest attempt (the others lost time to other processes), the worst memory.
                scored = min(attempts, key=lambda attempt: attempt["seconds"])
                scored["seconds_all"] = [attempt["seconds"] for attempt in attempts]
                scored["cpu_seconds_all"] = [attempt["cpu_seconds"] for attempt in attempts]
                scored["peak_rss_mb"] = max(attempt["peak_rss_mb"] for attempt in attempts)
                if run["engine"] != "sklearn":
                    scored |= run_phase(workdir, "compare", model=model, rows=rows, output=scored["output"],
                                        threshold=args.decision_threshold)["comparison"]
                row = {"model": name, "candidate": model, "rows": rows, **scored}
                row["rows_per_second"] = round(rows / row["seconds"])
                row["rows_per_cpu_second"] = round(rows / min(row["cpu_seconds_all"]))
                results.append(row)
                print(json.dumps(row))
                if run["engine"] != "sklearn":
                    (workdir / row["output"]).unlink(missing_ok=True)
            (workdir / f"scores-{model}-{rows}-sklearn-1.parquet").unlink(missing_ok=True)
        if not args.workdir:  # a kept --workdir keeps the (seeded) applications for the next run
            (workdir / f"applications-{rows}.parquet").unlink(missing_ok=True)
    for row in results:
        reference = next(r for r in results if r["model"] == row["model"] and r["rows"] == row["rows"]
                         and r["engine"] == "sklearn")
        row["speedup_vs_sklearn"] = round(reference["seconds"] / row["seconds"], 2)
        row["cpu_speedup_vs_sklearn"] = round(row["rows_per_cpu_second"] / reference["rows_per_cpu_second"], 2)
    record.emit({
        "command": record.command(),
        "machine": record.machine(),
        "decision_threshold": args.decision_threshold,
        "repeat": args.repeat,
        "prepare": prepared,
        "orbital_sql": generated,
        "applications": data,
        "results": results,
    }, args.out)


# ----- the phases (each in a fresh process) ---------------------------------------------------------
def _feature_query(workdir: Path, *extra: str) -> str:
    """The feature macro as dbt renders it for the scoring path, plus the loan id (and ``extra``)."""
    import sqlglot  # noqa: PLC0415

    rendered = (workdir / "features.sql").read_text()
    query = sqlglot.parse_one(rendered, read="duckdb")
    return query.select(KEEP, *extra, copy=False).sql("duckdb")


def phase_prepare(workdir: Path, *, train_rows: int, models: list[str]) -> None:
    """Render the feature SQL, simulate and featurise training loans, fit, pickle, export, compile."""
    import pickle  # noqa: PLC0415

    import duckdb  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from ml.candidates import choose  # noqa: PLC0415
    from ml.export.pmml import export_pmml  # noqa: PLC0415
    from ml.export.sql import compile_pmml, to_sql  # noqa: PLC0415
    from ml.registry import FEATURE_RELATION  # noqa: PLC0415
    from ml.train import LABEL, build_pipeline, compile_feature_sql, outlier_mask  # noqa: PLC0415
    from warehouse.loan_book import simulated_schema  # noqa: PLC0415
    from warehouse.paths import Paths  # noqa: PLC0415
    from warehouse.project import project_vars  # noqa: PLC0415
    from warehouse.simulator import simulate_loans  # noqa: PLC0415

    schema = simulated_schema()
    paths = Paths.from_env({"LENDGUARD_DATA_DIR": str(workdir / "lendguard")})
    if not (workdir / "features.sql").exists():  # kept in --workdir: delete it to render again
        (workdir / "features.sql").write_text(compile_feature_sql(paths, schema) + "\n")
    positive = ", ".join(f"'{value}'" for value in schema.outcome_positive)
    query = _feature_query(workdir, f"cast({schema.outcome_column} in ({positive}) as int) as {LABEL}")
    parts: list[pd.DataFrame] = []
    with duckdb.connect() as con:
        for block in simulate_loans(train_rows, seed=7):
            con.register(FEATURE_RELATION, block)
            parts.append(con.execute(query).df())
            con.unregister(FEATURE_RELATION)
    frame = pd.concat(parts, ignore_index=True)
    outliers = outlier_mask(frame, list(schema.model_numeric), float(project_vars()["outlier_iqr_multiple"]))
    frame = frame[~outliers].reset_index(drop=True)
    features = list(schema.feature_names)
    fitted: dict[str, Any] = {}
    for candidate in choose(models):
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            pipeline = build_pipeline(schema, candidate).fit(frame[features], frame[LABEL])
        fit_seconds = time.perf_counter() - started
        with (workdir / f"{candidate.name}.pkl").open("wb") as handle:
            pickle.dump(pipeline, handle)
        started = time.perf_counter()
        pmml = export_pmml(pipeline, schema.model_numeric, schema.model_categorical, workdir / f"{candidate.name}.pmml")
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sql = to_sql(compile_pmml(pmml, relation=RELATION, keep=[KEEP]), "duckdb")
        compile_seconds = time.perf_counter() - started
        (workdir / f"sql-{candidate.name}.sql").write_text(sql + "\n")
        with duckdb.connect() as con, threadpool_limits(limits=1):
            con.register(RELATION, frame)
            ours = con.execute(f"select * from ({sql}) order by {KEEP}").fetchnumpy()["probability"]
            reference = pipeline.predict_proba(frame.sort_values(KEEP)[features])[:, 1]
        fitted[candidate.name] = {
            "params": candidate.params, "fit_seconds": round(fit_seconds, 2),
            "pmml_export_seconds": round(export_seconds, 2), "sql_compile_seconds": round(compile_seconds, 2),
            "pmml_kb": round(pmml.stat().st_size / 1024, 1), "sql_chars": len(sql),
            "training_rows_max_abs_diff": float(np.max(np.abs(ours - reference))),
        }
    record.write_result(workdir, "prepare", {
        "train_rows": train_rows, "fit_rows": len(frame), "outliers_removed": int(outliers.sum()),
        "numeric": list(schema.model_numeric), "categorical": list(schema.model_categorical),
        "models": fitted,
    })


def phase_applications(workdir: Path, *, rows: int) -> None:
    """Simulated applications → the feature SQL block by block → one Parquet file (bounded memory)."""
    import duckdb  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from ml.registry import FEATURE_RELATION  # noqa: PLC0415
    from warehouse.simulator import simulate_loans  # noqa: PLC0415

    path = workdir / f"applications-{rows}.parquet"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:  # seeded: the same rows again
        record.write_result(workdir, "applications", {"rows": rows, "reused": str(path)})
        return
    query = _feature_query(workdir)
    started = time.perf_counter()
    writer = None
    with duckdb.connect() as con:
        for block in simulate_loans(rows, seed=2026):
            con.register(FEATURE_RELATION, block)
            table = con.execute(query).to_arrow_table()
            con.unregister(FEATURE_RELATION)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    if writer is not None:
        writer.close()
    record.write_result(workdir, "applications", {
        "rows": rows, "seconds": round(time.perf_counter() - started, 2),
        "parquet_mb": round(path.stat().st_size / 2**20, 1), "row_groups": pq.ParquetFile(path).num_row_groups,
    })


def phase_score(workdir: Path, *, model: str, rows: int, engine: str, threads: int, chunk_rows: int) -> None:
    source = workdir / f"applications-{rows}.parquet"
    output = f"scores-{model}-{rows}-{engine}-{threads}.parquet"
    target = workdir / output
    result: dict[str, Any] = {"engine": engine, "threads": threads, "output": output}
    if engine == "sklearn":
        result |= _score_sklearn(workdir / f"{model}.pkl", source, target, chunk_rows)
    else:
        import duckdb  # noqa: PLC0415

        query = (workdir / f"{'sql' if engine == 'sql' else 'orbital'}-{model}.sql").read_text().strip()
        if engine == "orbital":
            # Same output as ours: the loan id and the probability of class 1.
            query = f'select {KEEP}, "output_probability.1" as probability from ({query})'
        with duckdb.connect() as con:
            con.execute(f"set threads = {int(threads)}")
            con.execute(f"create view {RELATION} as select * from read_parquet('{source}')")
            started, cpu = time.perf_counter(), time.process_time()
            con.execute(f"copy ({query}) to '{target}' (format parquet)")
            result["seconds"] = round(time.perf_counter() - started, 3)
            result["cpu_seconds"] = round(time.process_time() - cpu, 3)
    record.write_result(workdir, "score", result)


def _score_sklearn(pickled: Path, source: Path, target: Path, chunk_rows: int) -> dict[str, Any]:
    """predict_proba over Parquet batches (one thread); read, predict and write timed apart."""
    import pickle  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    with pickled.open("rb") as handle:
        pipeline = pickle.load(handle)  # noqa: S301 - pickled by the prepare phase of this benchmark
    features = list(pipeline.feature_names_in_)
    spent = {"read": 0.0, "predict": 0.0, "write": 0.0}
    started, cpu = time.perf_counter(), time.process_time()
    schema = pa.schema([(KEEP, pa.string()), ("probability", pa.float64())])
    with pq.ParquetWriter(target, schema) as writer, threadpool_limits(limits=1):
        mark = time.perf_counter()
        for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_rows, columns=[KEEP, *features]):
            frame = batch.to_pandas()
            now = time.perf_counter()
            spent["read"] += now - mark
            probability = pipeline.predict_proba(frame[features])[:, 1]
            mark = time.perf_counter()
            spent["predict"] += mark - now
            writer.write_table(pa.table({KEEP: batch.column(KEEP).cast(pa.string()), "probability": probability},
                                        schema=schema))
            now = time.perf_counter()
            spent["write"] += now - mark
            mark = now
    return {"seconds": round(time.perf_counter() - started, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            "chunk_rows": chunk_rows,
            **{f"{part}_seconds": round(value, 3) for part, value in spent.items()}}


def phase_compare(workdir: Path, *, model: str, rows: int, output: str, threshold: float) -> None:
    """Every row of ``output`` against scikit-learn's, joined on the loan id."""
    import duckdb  # noqa: PLC0415

    reference = workdir / f"scores-{model}-{rows}-sklearn-1.parquet"
    with duckdb.connect() as con:
        # A 10M-row join on the loan id: bounded, spilling to disk rather than crowding other processes.
        con.execute(f"set memory_limit = '2GB'; set temp_directory = '{workdir / 'duckdb-tmp'}'")
        matched, missing, nulls, worst, off_1e9, off_1e3, flips = con.execute(
            f"""
            select count(s.{KEEP}), count(*) - count(s.{KEEP}), count(*) filter (o.probability is null),
                   max(abs(o.probability - s.probability)),
                   count(*) filter (abs(o.probability - s.probability) > 1e-9),
                   count(*) filter (abs(o.probability - s.probability) > 1e-3),
                   count(*) filter ((o.probability >= ?) <> (s.probability >= ?))
            from read_parquet('{workdir / output}') as o
            left join read_parquet('{reference}') as s using ({KEEP})
            """,
            [threshold, threshold],
        ).fetchone()
    if matched != rows or missing:
        raise SystemExit(f"{output}: {matched} rows matched scikit-learn's, {missing} did not (expected {rows})")
    record.write_result(workdir, "compare", {"comparison": {
        "compared_rows": matched, "null_probabilities": nulls, "max_abs_diff": worst,
        "rows_off_by_more_than_1e-9": off_1e9, "rows_off_by_more_than_1e-3": off_1e3, "decision_mismatches": flips,
    }})


PHASES = {
    "prepare": phase_prepare,
    "applications": phase_applications,
    "score": phase_score,
    "compare": phase_compare,
}


if __name__ == "__main__":
    main()
