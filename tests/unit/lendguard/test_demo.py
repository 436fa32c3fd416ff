"""The demo's closing pointers name what the chosen engine wrote."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from rich.console import Console

from lendguard.demo import where_to_look
from warehouse.paths import Paths
from warehouse.settings import EngineSettings


def pointers(paths: Paths) -> str:
    out = io.StringIO()
    where_to_look(paths, Console(file=out, width=400))
    return out.getvalue()


def test_on_duckdb_the_pointers_open_the_snapshot_file(tmp_path: Path) -> None:
    paths = Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path)})
    text = pointers(paths)
    assert f"-readonly {paths.snapshot}" in text


def test_on_spark_the_pointers_name_the_tables_spark_wrote_not_a_duckdb_file(tmp_path: Path) -> None:
    paths = dataclasses.replace(Paths.from_env({"LENDGUARD_DATA_DIR": str(tmp_path)}),
                                engine=EngineSettings(engine="spark"))
    text = pointers(paths)
    assert str(paths.spark_tables) in text
    assert "export-marts" in text
    assert "duckdb" not in text.replace(str(tmp_path), "")
