"""The session's trained deployment is built once however many pytest-xdist workers ask for it.

``build_once`` is what the ``trained_deployment`` fixture calls in every worker; here separate
processes stand in for the workers (the suite itself runs under ``pytest -n 2``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.deployment import build_once

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3

_WORKER = """
import os, sys, time
from pathlib import Path
from tests.support.deployment import build_once

shared, workers = Path(sys.argv[1]), int(sys.argv[2])
(shared / "ready" / str(os.getpid())).touch()
deadline = time.monotonic() + 120
while len(list((shared / "ready").iterdir())) < workers:  # all ask at about the same moment
    assert time.monotonic() < deadline, "the other workers did not start"
    time.sleep(0.01)

def build(directory: Path) -> None:
    directory.mkdir()
    with (shared / "builds.log").open("a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(0.5)  # a build takes a while: the others arrive meanwhile
    (directory / "made-by").write_text(str(os.getpid()))

print(build_once(shared / "deployment", build))
"""


def test_concurrent_workers_build_once_and_share_the_result(tmp_path: Path) -> None:
    (tmp_path / "ready").mkdir()
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), str(WORKERS)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0] * WORKERS, [err for _, err in outputs]
    builders = (tmp_path / "builds.log").read_text().split()
    assert len(builders) == 1, f"built by {builders}"
    assert {out.strip() for out, _ in outputs} == {str(tmp_path / "deployment")}
    assert (tmp_path / "deployment" / "made-by").read_text() == builders[0]


def test_a_build_that_failed_is_removed_and_tried_again(tmp_path: Path) -> None:
    target = tmp_path / "deployment"

    def failing(directory: Path) -> None:
        directory.mkdir()
        (directory / "half-written").touch()
        raise RuntimeError("dbt failed")

    with pytest.raises(RuntimeError, match="dbt failed"):
        build_once(target, failing)
    assert build_once(target, lambda directory: directory.mkdir()) == target
    assert list(target.iterdir()) == [], "the failed build's leftovers are gone"
    assert build_once(target, failing) == target, "a finished build is not made again"
