"""The seed-style baseline for bench/api_load.py: Flask, the registered model's scikit-learn pipeline,
and one SQLite insert (committed) per request, served by gunicorn with 2 sync workers:

    gunicorn -w 2 --timeout 120 -b 127.0.0.1:PORT --chdir bench flask_baseline:app

It validates nothing and explains nothing: what a straightforward design does on this machine, the
yardstick for ``lendguard serve`` (which validates, scores in groups, gives reason codes and logs
durably). Paths come from the environment (``LENDGUARD_DATA_DIR``), as for the API.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from typing import Any

import pyarrow as pa
from flask import Flask, jsonify, request

from ml.registry import load_bundle
from ml.scoring import FeatureScorer
from warehouse.paths import get_paths

paths = get_paths()
bundle = load_bundle(paths, "champion")
scorer = FeatureScorer(bundle, "sklearn")
book = bundle.loan_book
types = {**{f.name: pa.float64() for f in book.numeric_features},
         **{f.name: pa.string() for f in book.categorical_features}}
db = sqlite3.connect(paths.data_dir / "flask_baseline.sqlite3", timeout=30, isolation_level=None)
db.execute("create table if not exists requests"
           " (request_id text primary key, received_at real, body text, probability real, decision text)")
app = Flask(__name__)
logging.getLogger("gunicorn.error").info("flask baseline ready: %s version %s", bundle.name, bundle.version)


@app.post("/v1/score")
def score() -> Any:
    body = request.get_json()
    inputs = pa.table({name: pa.array([body.get(name)], type_) for name, type_ in types.items()})
    probability = float(scorer.probabilities(inputs)[0])
    threshold = bundle.threshold_for(body.get(book.group_column))
    decision = "manual_review" if probability >= threshold else "auto_approve"
    request_id = uuid.uuid4().hex
    db.execute("insert into requests values (?, ?, ?, ?, ?)",
               (request_id, time.time(), json.dumps(body), probability, decision))
    return jsonify(request_id=request_id, application_id=body.get("application_id"), probability=probability,
                   threshold=threshold, decision=decision)
