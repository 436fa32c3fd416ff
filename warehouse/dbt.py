"""Running dbt: the only writer of the warehouse file.

dbt runs in this process, through dbt-core's programmatic API (``dbtRunner``), one invocation at a
time (dbt is not thread-safe): importing dbt costs about 3 CPU-seconds and parsing the project
about 4, so a command that runs dbt several times (a pipeline run: compile, gate build, delivery
build) pays the import once, and every invocation with the same project files, vars, environment
and target reuses the manifest parsed by the first (``bench/dbt_invocations.py``).

Each invocation gets absolute paths in its environment and the current loan-book contract as the
``loan_book`` var, so the same project builds the simulator's book or a lender's own. Artifacts and
logs go under the data directory, so concurrent invocations in different processes (a build and a
compile) never share a target folder. After each invocation the engine lets go of the warehouse
(:class:`DbtEngine`), so the one-writer design holds across processes: dbt holds the DuckDB file
only while it runs, and ``warehouse.publish`` can copy it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warehouse.errors import LendguardError
from warehouse.paths import PROJECT_DIR, Paths
from warehouse.settings import SettingsError, variable

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest
    from dbt_common.events.base_types import EventMsg

log = logging.getLogger(__name__)

PROJECT_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "data-tests")
"""What a parse reads: a change to any of these files makes a cached manifest stale."""
CACHED_MANIFESTS = 4
"""Parsed manifests kept per process: a pipeline run uses three (compile, gate build, delivery
build); each is a few tens of MB, so a process that works on many deployments stays bounded."""
PARSED_ENVIRONMENT = ("LENDGUARD_", "DBT_")
"""The environment variables a parse can depend on: the project's ``env_var()`` calls read
``LENDGUARD_*`` ones, dbt's own flags ``DBT_*`` (others, such as pytest's per test, must not make
a cached manifest look stale)."""
OUTPUT_LEVELS = frozenset({"info", "warn", "error"})
"""dbt's events kept as an invocation's output (what its console would have shown)."""


class DbtError(LendguardError):
    """dbt could not run, or reported failures; the message names what failed."""


@dataclass(frozen=True)
class DbtTiming:
    """Where one invocation's time went (``bench/dbt_invocations.py`` records these)."""

    command: str
    wall_seconds: float
    cpu_seconds: float
    """CPU time of this process during the invocation (dbt's threads included)."""
    execution_seconds: float | None
    """dbt's own ``elapsed_time`` (running the selected nodes); the rest of the wall time is
    parsing and set-up. None when dbt failed before running anything."""
    parsed: bool
    """Whether this invocation parsed the project (False: it reused a cached manifest)."""

    @property
    def startup_and_parse_seconds(self) -> float | None:
        return None if self.execution_seconds is None else self.wall_seconds - self.execution_seconds


@dataclass(frozen=True)
class DbtRun:
    """What one dbt invocation did.

    ``returncode`` is what the ``dbt`` command would have exited with: 0 success, 1 dbt ran but a
    node failed, 2 dbt could not run (``output`` then ends with the reason).
    """

    returncode: int
    output: str
    results: tuple[dict[str, Any], ...]
    timing: DbtTiming
    compiled: tuple[str, ...] = ()
    """The compiled SQL of each node run (``compile`` fills it; ``compile --inline``: one)."""

    @property
    def failures(self) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in self.results if r.get("status") in {"error", "fail", "runtime error"})

    @property
    def warnings(self) -> tuple[dict[str, Any], ...]:
        return tuple(r for r in self.results if r.get("status") == "warn")


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open between invocations of one process.

    dbt-duckdb caches one database per process (``DuckDBConnectionManager._ENV``) and closes it only
    at exit; held open, it would lock the warehouse file against every other process (their builds,
    ``lendguard sql``) and against this process's own ``publish``, which opens it with another
    configuration. So each invocation opens it and this closes it.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager  # noqa: PLC0415 - start-up cost: imports dbt

    # The adapter offers no public way to close it: its class attribute is the only handle.
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]  # dbt-duckdb is untyped


@dataclass(frozen=True)
class DbtEngine:
    """Where dbt runs the project: a profile's target, and what this process does around each invocation.

    ``prepare`` runs before every invocation, in this process and on the invoking thread: the place
    to set up what an adapter finds in-process (for example a SparkSession with Python UDFs
    registered, which dbt-spark's ``method: session`` picks up with ``getOrCreate()``).
    ``release`` runs after every invocation, whatever happened: it frees what the adapter keeps
    open between invocations (DuckDB: the warehouse file).
    """

    target: str | None = None
    """The target in ``profiles.yml`` (None: the profile's default)."""
    profiles_dir: Path = PROJECT_DIR
    prepare: Callable[[], None] | None = field(default=None, compare=False)
    release: Callable[[], None] | None = field(default=None, compare=False)


DUCKDB = DbtEngine(release=_release_duckdb)
"""The warehouse's own engine: DuckDB through dbt-duckdb, ``profiles.yml``'s default target."""


def engine_for(paths: Paths) -> DbtEngine:
    """The engine ``paths``' settings name (``LENDGUARD_ENGINE``): DuckDB, or a local Spark in this process.

    On Spark, each invocation first makes sure this process's SparkSession is lendguard's, with the
    SciPy functions the monitoring marts call registered (``warehouse.spark_session``); dbt-spark's
    ``method: session`` then builds in it. The session outlives the invocation (starting Spark takes
    tens of seconds; later invocations and the marts reader of this process reuse it).
    """
    if paths.engine.engine == "spark":
        return DbtEngine(target="spark", prepare=partial(_prepare_spark, paths))
    return DUCKDB


def _prepare_spark(paths: Paths) -> None:
    try:
        from warehouse.spark_session import local_session  # noqa: PLC0415 - pyspark: only with the spark engine, seconds to import
    except ImportError as exc:
        raise SettingsError("LENDGUARD_ENGINE=spark needs pyspark: install requirements-spark.lock") from exc
    local_session(paths, app_name="lendguard-dbt")


class _Invocations:
    """This process's dbt: one invocation at a time, and the manifests parsed so far.

    A manifest is reused only for the exact inputs it was parsed from: the project's files (path,
    size, modification time), the champion's macros in the deployment's state directory (their
    contents), the vars (some are rendered into node configs at parse time), the environment the
    project reads (the landing zone's path is rendered into the sources) and the profile's target
    (the warehouse's path names the nodes' database).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.manifests: OrderedDict[str, Manifest] = OrderedDict()

    def manifest(self, key: str) -> Manifest | None:
        manifest = self.manifests.get(key)
        if manifest is not None:
            self.manifests.move_to_end(key)
        return manifest

    def keep(self, key: str, manifest: Manifest) -> None:
        self.manifests[key] = manifest
        while len(self.manifests) > CACHED_MANIFESTS:
            self.manifests.popitem(last=False)


_INVOCATIONS = _Invocations()


def _project_fingerprint() -> list[tuple[str, int, int]]:
    """Every project file's path, size and modification time: a cheap stand-in for its contents."""
    found = []
    for name in PROJECT_SOURCES:
        root = PROJECT_DIR / name
        for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
            if path.is_file():
                stat = path.stat()
                found.append((str(path.relative_to(PROJECT_DIR)), stat.st_size, stat.st_mtime_ns))
    return found


def _generated_macros(folder: Path) -> list[tuple[str, str]]:
    """The macros lendguard writes outside the project (the champion's query, ``Paths.champion_macros_dir``),
    by content: a promotion rewrites them between two invocations of one process, perhaps within the
    file system's timestamp resolution and at the same size (version 7 becomes 8). The names dbt reads
    (not dot files: a rewrite's temporary file)."""
    if not folder.is_dir():
        return []
    return [(str(path.relative_to(folder)), hashlib.sha256(path.read_bytes()).hexdigest())
            for path in sorted(folder.rglob("*.sql")) if path.is_file() and not path.name.startswith(".")]


def _manifest_key(engine: DbtEngine, env: dict[str, str], dbt_vars: dict[str, Any] | None, paths: Paths) -> str:
    read = sorted((name, value) for name, value in env.items() if name.startswith(PARSED_ENVIRONMENT))
    inputs = [_project_fingerprint(), _generated_macros(paths.champion_macros_dir), dbt_vars or {}, read,
              engine.target, str(engine.profiles_dir)]
    return hashlib.sha256(json.dumps(inputs, default=str).encode()).hexdigest()


class _Output:
    """dbt's events as text (what its console would have shown), and the environment each invocation sees.

    dbt reads ``env_var()`` from an invocation context it fills from ``os.environ`` when the
    invocation starts; library code must not write ``os.environ``, so this callback, called by dbt
    for each event from the first one on (fired just after that context is filled, before the
    profile or the project is read), replaces the context's environment with the invocation's own.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[str] = []

    def __call__(self, event: EventMsg) -> None:
        from dbt_common.context import try_get_invocation_context  # noqa: PLC0415 - start-up cost: imports dbt

        context = try_get_invocation_context()
        if context is not None and context.env is not self.env:  # dbt has no other way in for it
            context._env = self.env
        if event.info.level in OUTPUT_LEVELS:
            self.lines.append(getattr(event.info, "msg", ""))  # every event has one; dbt's Protocol omits it


def run_dbt(
    paths: Paths,
    args: list[str],
    dbt_vars: dict[str, Any] | None = None,
    *,
    target_path: Path | None = None,
    env_overrides: dict[str, str] | None = None,
    engine: DbtEngine | None = None,
) -> DbtRun:
    """Run ``dbt <args>`` against this deployment's warehouse; never raises on dbt's own failures.

    ``args`` starts with dbt's command (``build``, ``compile``, ...); lendguard adds the project,
    profile, target and artifact paths and ``dbt_vars`` as ``--vars``. Runs in this process, one
    invocation at a time (callers on other threads wait), on ``engine`` (default: the one ``paths``
    names, :func:`engine_for`).
    """
    engine = engine or engine_for(paths)
    target = target_path or paths.data_dir / "dbt" / "target"
    common = [
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(engine.profiles_dir),
        "--target-path", str(target),
        "--log-path", str(paths.data_dir / "dbt" / "logs"),
        "--log-level", "none",  # the console's events come back as DbtRun.output instead
        "--no-send-anonymous-usage-stats",
        *(["--target", engine.target] if engine.target else []),
        *(["--vars", json.dumps(dbt_vars)] if dbt_vars else []),
    ]
    env = {**paths.dbt_env(), **(env_overrides or {})}
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    log.debug("running dbt %s", " ".join([*args, *common]))
    from dbt.contracts.graph.manifest import Manifest  # noqa: PLC0415 - start-up cost: dbt takes about 3 s to import

    with _INVOCATIONS.lock:
        started, cpu_before = time.perf_counter(), time.process_time()
        output = _Output(env)
        key = _manifest_key(engine, env, dbt_vars, paths)
        manifest = _INVOCATIONS.manifest(key)
        parsed = manifest is None
        try:
            if engine.prepare is not None:
                engine.prepare()
            if manifest is None:
                # Partially, from the target folder's saved state, when dbt can.
                outcome = _invoke(["parse", *common], None, output)
                if outcome.success and isinstance(outcome.result, Manifest):
                    manifest = outcome.result
                    if _reusable(manifest):
                        _INVOCATIONS.keep(key, manifest)
            if manifest is not None:  # else the parse failed: its outcome says why, as the dbt command would
                outcome = _invoke([*args, *common], manifest, output)
        finally:
            if engine.release is not None:
                engine.release()
        elapsed = getattr(outcome.result, "elapsed_time", None)
        timing = DbtTiming(args[0], time.perf_counter() - started, time.process_time() - cpu_before, elapsed, parsed)
        run = _run(outcome, output, timing)
    log.debug("dbt %s: exit %d in %.2f s (%.2f s CPU, %s)", args[0], run.returncode, run.timing.wall_seconds,
              run.timing.cpu_seconds, "parsed" if parsed else "manifest reused", extra={"dbt_timing": run.timing})
    return run


def _reusable(manifest: Manifest) -> bool:
    """Whether later invocations may run on this manifest: not when a model is ephemeral. dbt's compiler
    marks a node whose ephemeral parents' CTEs it injected and never injects them again, so a second
    run on the same manifest would compile that node without them."""
    return not any(getattr(node.config, "materialized", None) == "ephemeral" for node in manifest.nodes.values())


def _invoke(args: list[str], manifest: Manifest | None, output: _Output) -> dbtRunnerResult:
    from dbt.cli.main import dbtRunner  # noqa: PLC0415 - start-up cost: imports dbt

    outcome = dbtRunner(manifest=manifest, callbacks=[output]).invoke(args)
    if isinstance(outcome.exception, KeyboardInterrupt):  # a person stopped it: not dbt's failure to report
        raise outcome.exception
    return outcome


def _run(outcome: dbtRunnerResult, output: _Output, timing: DbtTiming) -> DbtRun:
    """The invocation as the ``dbt`` command would have ended it: exit code, console text, results."""
    if outcome.success:
        returncode = 0
    elif outcome.exception is None:
        returncode = 1  # dbt ran; a node failed
    else:
        returncode = 2
        output.lines.append(f"{type(outcome.exception).__name__}: {outcome.exception}")
    results = getattr(outcome.result, "results", None) or ()
    return DbtRun(
        returncode,
        "\n".join(output.lines),
        tuple(
            {
                "unique_id": _unique_id(r),
                "status": str(getattr(r.status, "value", r.status)),
                "message": r.message,
                "failures": r.failures,
            }
            for r in results
        ),
        timing,
        tuple(str(getattr(getattr(r, "node", None), "compiled_code", None) or "") for r in results),
    )


def _unique_id(result: Any) -> str:
    """A result's node id: a run's results carry their node, a run-operation's only the id."""
    node = getattr(result, "node", None)
    return str(node.unique_id if node is not None else getattr(result, "unique_id", ""))


def compile_inline(paths: Paths, sql: str, dbt_vars: dict[str, Any]) -> str:
    """Render SQL that uses the project's macros (for example the feature definition).

    Compiles against an in-memory database and a target folder of its own (locked, for two
    processes compiling at once), so it never touches the warehouse file or a build in progress,
    and its saved parse state stays valid from one compile to the next; always for DuckDB, whatever
    the warehouse's engine: the compiled SQL runs in the scorer's in-process DuckDB.
    """
    target = paths.data_dir / "dbt" / "compile-target"
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        run = run_dbt(
            paths,
            ["compile", "--inline", sql],
            dbt_vars,
            target_path=target,
            env_overrides={variable("paths.warehouse"): ":memory:", variable("engine.engine"): "duckdb"},
            engine=DUCKDB,
        )
    if run.returncode != 0:
        raise DbtError(f"dbt compile failed:\n{run.output.strip()}")
    if len(run.compiled) != 1:
        raise DbtError(f"unexpected dbt compile output:\n{run.output}")
    return run.compiled[0]
