"""Scoring requests built from simulated traffic, and the scorer's input for them built without the API."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from warehouse.loan_book import simulated_schema
from warehouse.simulator import simulate_traffic

BOOK = simulated_schema()
TRAFFIC = simulate_traffic("stable", 40, seed=3)


def application(index: int, **changes: Any) -> dict[str, Any]:
    """Request ``index`` of the simulated traffic, as a client sends it (extra columns dropped)."""
    row = TRAFFIC.select([*BOOK.input_names, BOOK.group_column]).slice(index, 1).to_pylist()[0]
    return {**row, "application_id": f"app-{index}", **changes}


def inputs(bodies: list[dict[str, Any]]) -> pa.Table:
    """The scorer's input for ``bodies``, built independently of the API's code."""
    return pa.table({
        **{f.name: pa.array([float(b[f.name]) for b in bodies], pa.float64()) for f in BOOK.numeric_features},
        **{f.name: pa.array([b[f.name] for b in bodies], pa.string()) for f in BOOK.categorical_features},
    })
