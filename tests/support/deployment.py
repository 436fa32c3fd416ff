"""Deployments for tests: a data directory of their own, the shared trained one, and copies of it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from tests.support.servers import free_port
from warehouse import landing
from warehouse.paths import Paths
from warehouse.settings import load_settings

SMALL_BOOK = 30_000
"""Loans in the test deployments: enough for every group to appear in both splits, quick to build."""
SMALL_BOOK_SEED = 11
"""The simulator's seed of the shared deployment's book (its selected model passes the gate)."""
SHARED_CANDIDATE = "logreg_c0.1"
"""The candidate the whole search space's cross-validation selects on the shared book (log loss
0.32516 against 0.32525 for logreg_c1, the runner-up). Pipelines on that book train it alone: the same
model a full search would deliver, without cross-validating four others (about 40 s of CPU each time).
Selection itself is tested where it is the point: ``lendguard demo`` (tests/e2e) searches the whole
space, tests/unit/ml/test_train.py cross-validates several candidates."""


def deployment_env(data_dir: Path) -> dict[str, str]:
    """Environment variables that point every lendguard path into ``data_dir``."""
    tracking = f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    return {"LENDGUARD_DATA_DIR": str(data_dir), "MLFLOW_TRACKING_URI": tracking}


def paths_for(data_dir: Path) -> Paths:
    """The paths of a deployment whose data directory is ``data_dir``."""
    return Paths.from_env({**os.environ, **deployment_env(data_dir)})


DEV_TEST_MAX_P99_MS = "60000"
"""The dev stage's p99 limit in test deployments: other tests share the cores (the limit's own test
is in tests/integration/test_delivery.py, the speed goal in bench/api_load.py)."""


def deliver(paths: Paths, *, approver: str = "pytest", candidates: list[str] | None = None) -> str:
    """Run the whole pipeline (the dev API on a free port, stopped by the approval) and approve the
    version it delivers; return it. An approval follows every stage before it, so the dev stages run.
    ``candidates``: the ones its train stage cross-validates (None: the whole search space)."""
    from lendguard import pipeline  # imports MLflow and scikit-learn: only the tests that train pay for it

    settings = load_settings({**os.environ, "LENDGUARD_DEV_API_PORT": str(free_port()),
                              "LENDGUARD_DEV_MAX_P99_MS": DEV_TEST_MAX_P99_MS})
    run = pipeline.run_pipeline(paths, supersede=True, settings=settings, candidates=candidates)
    assert run.version is not None
    pipeline.decide(paths, run.version, approve=True, by=approver, note="test fixture", settings=settings)
    return run.version


def build_trained_deployment(data_dir: Path) -> Paths:
    """Simulate a loan book, build it, deliver an approved champion (:data:`SHARED_CANDIDATE`), and
    build again.

    The last build puts the delivery's own records (gate results, approvals, the champion's batch
    scores) in the published snapshot, so tests read them without rebuilding a shared warehouse.
    """
    from warehouse.build import build  # runs dbt: only the tests that build pay for the import
    from warehouse.importer import land_simulated

    paths = paths_for(data_dir)
    land_simulated(paths, SMALL_BOOK, seed=SMALL_BOOK_SEED)
    built = build(paths)
    assert built.ok, built.run.output
    deliver(paths, candidates=[SHARED_CANDIDATE])
    rebuilt = build(paths)
    assert rebuilt.ok, rebuilt.run.output
    return paths


def build_once(directory: Path, build: Callable[[Path], object]) -> Path:
    """``build(directory)`` unless another process already did: the others wait on a file lock.

    pytest-xdist's workers are processes; each calls this with the same ``directory`` (under the
    session's shared base temp), and the first one builds. A build that failed half way is removed
    and tried again by the next caller, so its error is reported there too.
    """
    done = directory.with_name(f"{directory.name}.done")
    with FileLock(directory.with_name(f"{directory.name}.lock")):
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            build(directory)
            done.touch()
    return directory


def copy_deployment(source: Paths, target: Path, *ignore: str) -> Paths:
    """A copy of ``source``'s data directory at ``target / "data"``, for a test that changes it.

    ``ignore`` names what to leave out (``shutil.ignore_patterns`` patterns). Two things still point
    at the source until the copy is changed: the warehouse's landing-zone views (a build in the copy
    rewrites them; leave out ``*.duckdb`` to start without any) and the MLflow artifacts of the
    registered versions (read only; new runs in the copy log theirs there too).
    """
    shutil.copytree(source.data_dir, target / "data", symlinks=True,
                    ignore=shutil.ignore_patterns("*.lock", *ignore))
    return paths_for(target / "data")


def copy_registry(source: Paths, target: Path) -> Paths:
    """A deployment at ``target / "data"`` with a copy of ``source``'s MLflow registry and nothing else:
    aliases moved and versions registered there cannot disturb other tests."""
    paths = paths_for(target / "data")
    paths.mlflow_dir.mkdir(parents=True)
    for database in source.mlflow_dir.glob("mlflow.db*"):
        shutil.copy2(database, paths.mlflow_dir / database.name)
    return paths


def untrained_copy(built: Paths, target: Path) -> Paths:
    """``built``'s loan book (the snapshot linked, not copied), built in a deployment of its own at
    ``target / "data"`` with no registry yet: for a test that trains and decides on its own."""
    from warehouse.build import build  # runs dbt: only the tests that build pay for the import

    paths = paths_for(target / "data")
    source = landing.latest_snapshot(built.landing, landing.LOANS)
    assert source is not None
    (paths.landing / landing.LOANS).mkdir(parents=True)
    (paths.landing / landing.LOANS / source.name).symlink_to(source)
    assert build(paths).ok
    return paths
