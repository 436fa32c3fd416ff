"""A replay sends the simulator's timeline moved to end when it starts, so the API's timestamp bounds accept it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pyarrow.compute as pc

from lendguard.replay import application_bodies, ending_at
from warehouse.loan_book import simulated_schema
from warehouse.simulator import simulate_traffic


def test_the_timeline_keeps_its_spacing_and_ends_at_the_given_moment() -> None:
    traffic = simulate_traffic("stable", 50, seed=4)
    end = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    moved = ending_at(traffic, end)
    before = traffic.column("occurred_at").to_pylist()
    after = moved.column("occurred_at").to_pylist()
    assert after[-1] == end == pc.max(moved.column("occurred_at")).as_py()
    assert [b - a for a, b in itertools.pairwise(before)] == [b - a for a, b in itertools.pairwise(after)]
    assert moved.column_names == traffic.column_names
    assert moved.drop_columns(["occurred_at"]).equals(traffic.drop_columns(["occurred_at"]))
    bodies = application_bodies(moved, simulated_schema())
    assert bodies[-1]["occurred_at"] == "2026-12-04T18:00:00+00:00"
