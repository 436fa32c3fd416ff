"""The one way lendguard gets a local Spark session (``local[2]``), with the SciPy functions registered.

dbt-spark's ``method: session`` takes ``SparkSession.builder.getOrCreate()``: the session this
module creates and prepares in a process before dbt runs there is the one dbt builds with. So the
engine is prepared here once: a local master, no web UI, UTC session time (DuckDB's timestamps
are UTC wall clocks; ``date_trunc('day', ...)`` must cut at the same instants), plain Parquet
tables in a warehouse directory under the lendguard data directory, a persistent catalog (Derby,
beside it) so another process finds the tables, few shuffle partitions (two cores: the default 200
would make hundreds of tiny tasks per aggregate).

``register_functions`` adds the functions of ``warehouse.distributions.FUNCTIONS`` as pandas UDFs
under the names the macros call (``lg_binom_ppf``, ``lg_beta_ppf``, ``lg_ks_2samp_pvalue``,
``lg_chi2_sf``): the same bodies DuckDB's UDFs run (``warehouse.dbt_udfs``), so both engines give
SciPy's numbers. They are session functions: a Spark Thrift server or a Databricks SQL warehouse
(no Python in a session lendguard owns) needs the landed values instead (README, "Running on
Spark": statistics).

pyspark is an optional dependency (``requirements-spark.lock``); only this module imports it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.pandas.functions import pandas_udf
from pyspark.sql.types import StructType

from warehouse.distributions import FUNCTIONS, SqlFunction
from warehouse.paths import Paths, get_paths

logger = logging.getLogger(__name__)

PANDAS_VERSION_NOTICE = "PySpark does not yet fully support pandas"
"""The start of the FutureWarning pyspark 4.3 gives on every pandas conversion under pandas 3 (the
project's): noise on every command's stderr, as the functions run through pandas UDFs are checked
against DuckDB and SciPy on this pandas (tests/spark/test_statistics.py). Silenced in the driver and,
through the executors' environment, in Spark's Python workers."""
warnings.filterwarnings("ignore", message=PANDAS_VERSION_NOTICE, category=FutureWarning)

TABLE_SCHEMAS_FILE = "_lendguard_schemas.json"
"""Beside the tables a local build wrote: each table's schema as the build's catalog has it."""
SHUFFLE_PARTITIONS = 4
"""Twice the local cores: enough tasks to keep both busy, few enough that each does real work
(adaptive execution still merges small ones)."""


def session_config(paths: Paths, *, shuffle_partitions: int = SHUFFLE_PARTITIONS,
                   driver_memory: str = "2g") -> dict[str, str]:
    """The settings of lendguard's local session (a mapping, so a caller can read or extend them).

    The one place they are written: dbt-spark's ``method: session`` builds in the session this
    module starts before dbt runs (``warehouse.dbt.engine_for``), so ``profiles.yml``'s ``spark``
    target repeats none of them.
    """
    root = paths.spark_dir
    port = paths.engine.spark_port
    return {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # LENDGUARD_SPARK_PORT: the driver's port, the block manager's the next (0: any free ports;
        # a taken port makes Spark try the following ones).
        "spark.driver.port": str(port),
        "spark.blockManager.port": str(port + 1 if port else 0),
        "spark.driver.memory": driver_memory,
        # Timestamps are UTC, as in the landing zone and DuckDB.
        "spark.sql.session.timeZone": "UTC",
        # The landing zone's naive (UTC) Parquet timestamps read as `timestamp`, the type Spark's
        # own timestamp functions return and the marts' contracts declare (else timestamp_ntz).
        "spark.sql.parquet.inferTimestampNTZ.enabled": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        # Landed files of one dataset may differ in columns (a newer writer added one): read by name.
        "spark.sql.parquet.mergeSchema": "true",
        # JSON built in SQL keeps null members, as DuckDB's json_object.
        "spark.sql.jsonGenerator.ignoreNullFields": "false",
        "spark.sql.sources.default": "parquet",
        "spark.executorEnv.PYTHONWARNINGS": f"ignore:{PANDAS_VERSION_NOTICE}:FutureWarning",
        "spark.sql.legacy.createHiveTableByDefault": "false",
        "spark.sql.warehouse.dir": str(paths.spark_warehouse),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true",
        # Derby writes derby.log into its system home (else the working directory).
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root} -Duser.timezone=UTC",
    }


def local_session(paths: Paths | None = None, *, master: str | None = None,
                  config: Mapping[str, str] | None = None, app_name: str = "lendguard") -> SparkSession:
    """lendguard's local SparkSession (created, or the process's existing one), functions registered.

    ``master`` defaults to ``LENDGUARD_SPARK_MASTER`` (``local[2]``); ``config`` adds or overrides
    settings. Settings fixed at start-up (master, memory, catalog, ports) apply only when this
    call starts Spark.
    """
    paths = paths or get_paths()
    paths.spark_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.master(master or paths.engine.spark_master).appName(app_name)
    for key, value in {**session_config(paths), **(config or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    register_functions(spark)
    return spark


def register_functions(spark: SparkSession) -> None:
    """Register every function of ``warehouse.distributions.FUNCTIONS`` on ``spark`` as a pandas UDF."""
    # Python workers run the interpreter the session records (by default `python3` on the PATH, which
    # may lack SciPy): this one, whose packages the UDFs import.
    spark.sparkContext.pythonExec = sys.executable
    for function in FUNCTIONS:
        spark.udf.register(function.name, pandas_udf(series_udf(function), "double"))  # type: ignore[call-overload]
    logger.debug("registered %s on Spark", ", ".join(function.name for function in FUNCTIONS))


def series_udf(function: SqlFunction) -> Callable[..., Any]:
    """``function``'s body over pandas Series (Spark's NULLs arrive as NaN; NaN goes back as NULL)."""
    def udf(*columns: pd.Series) -> pd.Series:
        arrays = [np.asarray(pd.to_numeric(column, errors="coerce"), dtype=np.float64) for column in columns]
        return pd.Series(function.body(*arrays), dtype="float64")

    udf.__name__ = function.name
    return udf


def publish_tables(paths: Paths, database: str) -> Path:
    """What a Spark build publishes: the tables stay where dbt-spark wrote them; beside them, each
    table's schema from the build's catalog (:func:`table_schemas`), and the folder's time the build's.

    A reader in another process has a catalog of its own (the build's Derby metastore is one
    process's) and registers each table folder: with its schema, an empty table (a partitioned one
    writes no file) is a table, and partition columns keep their types (a model version ``1`` in a
    folder name stays a string).
    """
    folder = paths.spark_tables
    spark = local_session(paths)  # the build's own session (this process ran dbt in it)
    schemas = {table.name: json.loads(spark.table(f"`{database}`.`{table.name}`").schema.json())
               for table in spark.catalog.listTables(database) if not table.isTemporary and table.tableType != "VIEW"}
    target = folder / TABLE_SCHEMAS_FILE
    written = target.with_name(f".{target.name}.tmp")
    written.write_text(json.dumps(schemas, indent=1, sort_keys=True))
    written.replace(target)
    os.utime(folder)
    return folder


def table_schemas(folder: Path) -> dict[str, StructType]:
    """The schemas :func:`publish_tables` wrote beside the tables in ``folder`` (none before a build)."""
    path = folder / TABLE_SCHEMAS_FILE
    if not path.exists():
        return {}
    return {name: StructType.fromJson(schema) for name, schema in json.loads(path.read_text()).items()}
