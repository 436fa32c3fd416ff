"""A loan book without its group column, through `make bisg-book`'s steps: the checks that need no
pipeline run. The book's BISG columns and the gated model's BISG-weighted evaluation are checked on
the deployment tests/e2e/test_bisg_served.py takes through the same steps (one pipeline run serves
both)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lendguard import cli
from tests.support.bisg import make_steps
from tests.support.deployment import deployment_env


def test_make_bisg_book_runs_the_four_steps_on_the_default_book() -> None:
    steps = make_steps("bisg-book", LOANS="30000")
    assert [step[0] for step in steps] == ["simulate", "reference-data", "build", "pipeline"]
    assert steps[0] == ["simulate", "--proxies", "--omit-group", "--loans", "30000"], "groups differ by default"
    assert steps[-1] == ["pipeline", "run"], "the whole search space unless CANDIDATES says otherwise"


def test_simulate_refuses_omit_group_without_proxies(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.cli, ["simulate", "--omit-group", "--loans", "10"],
                                env=deployment_env(tmp_path / "data"))
    assert result.exit_code != 0
    assert "--omit-group needs --proxies" in result.output
