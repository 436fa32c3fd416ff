"""One local Spark session per test session (starting Spark takes 10-40 s on these machines).

pyspark is an optional dependency (``requirements-spark.lock``): without it the tests that need
Spark are skipped, saying what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.deployment import paths_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def start_local_spark(root: Path) -> SparkSession:
    """lendguard's own local session (``warehouse.spark_session``), its data under ``root``."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: uv pip install -r requirements-spark.lock")
    from warehouse.spark_session import local_session  # pyspark is optional: imported after the skip

    return local_session(paths_for(root / "data"), app_name="lendguard-tests")


def stop_spark() -> None:
    """Stop this process's Spark, whichever test module started it, so the next session starts clean
    (``getOrCreate`` would hand back the running one, its catalog and its settings)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:  # pyspark has no public "is one running"
        SparkSession.builder.getOrCreate().stop()
