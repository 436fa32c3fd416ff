"""Translate a fitted pipeline to SQL with orbital (runs in the benchmark-only venv, not the project's).

orbital (pipeline → ONNX through skl2onnx → SQL through ibis) is the comparison point of
`bench/scoring.py`; it is not a project dependency, so it lives in `bench/.venv-orbital`:

    .venv/bin/uv venv --python python3.11 bench/.venv-orbital
    .venv/bin/uv pip install --python bench/.venv-orbital/bin/python -r bench/requirements-orbital.txt

`bench/scoring.py` calls this script with that venv's interpreter; it unpickles the very pipeline
the project fitted (same scikit-learn pin) and writes orbital's DuckDB SQL over ``--table``, with
``--keep`` passed through.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from importlib import metadata
from pathlib import Path

import orbital
from orbital import types


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", type=Path, required=True, help="pickled fitted scikit-learn pipeline")
    parser.add_argument("--numeric", nargs="+", required=True)
    parser.add_argument("--categorical", nargs="*", default=[])
    parser.add_argument("--keep", default="loan_id")
    parser.add_argument("--table", default="model_features")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with args.pipeline.open("rb") as handle:
        pipeline = pickle.load(handle)  # noqa: S301 - written a moment ago by bench/scoring.py
    features: dict[str, types.ColumnType] = {name: types.DoubleColumnType() for name in args.numeric}
    features |= {name: types.StringColumnType() for name in args.categorical}
    features[args.keep] = types.StringColumnType(passthrough=True)
    started = time.perf_counter()
    try:
        parsed = orbital.parse_pipeline(pipeline, features=features)
        sql = orbital.export_sql(
            args.table, parsed, dialect="duckdb", projection=orbital.ResultsProjection(select=[args.keep])
        )
    except Exception as error:  # report whatever orbital refuses, in its own words
        print(json.dumps({"error": f"{type(error).__name__}: {error}"[:2000]}))  # skl2onnx dumps whole trees
        sys.exit(1)
    args.out.write_text(sql + "\n")
    print(json.dumps({
        "seconds": round(time.perf_counter() - started, 2),
        "orbital": metadata.version("orbital"),
        "skl2onnx": metadata.version("skl2onnx"),
        "sql_chars": len(sql),
    }))


if __name__ == "__main__":
    main()
