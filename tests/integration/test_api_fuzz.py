"""Fuzzing the API from its own OpenAPI document (schemathesis): no input gets a 5xx, and every
answer conforms to what the document says (every status code listed, content types, headers,
response bodies, security: a request without the key is refused).

The app runs for real (uvicorn, in a thread of this process) on the trained champion, with API keys
on; hypothesis generates valid (positive) and schema-violating (negative) requests for every
operation, and every check schemathesis has runs on each answer. Bounded so it stays around a minute.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Config, GenerationMode
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)
from schemathesis.core.failures import FailureGroup

from api.app import create_app
from api.auth import create_key
from lendguard.processes import wait_until_ready
from tests.support.servers import free_port
from warehouse.paths import Paths
from warehouse.settings import ApiSettings

pytestmark = pytest.mark.slow

EXAMPLES = 30
"""Per operation and generation mode; each example is one request (plus schemathesis's own follow-ups)."""
CONFIG = Config.from_dict({"checks": {
    "positive_data_acceptance": {"expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413"]},
    "negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]},
}})
"""Every check, with schemathesis's defaults but one: 413 (documented on every route with a body) is a
rejection, and a valid body may get it: JSON Schema cannot state a body's size limit in bytes, and a
schema-valid batch of long, escaped strings can exceed it."""


def occurring_now(body: object) -> object:
    """``body`` with every ``occurred_at`` set to now. Its valid range moves with the clock and the
    serving version (receipt + skew, registration - allowance), which JSON Schema cannot state, so a
    schema-valid year 4716 is rightly refused; the bounds have tests of their own
    (tests/integration/test_api_occurred_at.py)."""
    now = datetime.now(UTC).isoformat()
    if isinstance(body, dict):
        body = {**body, "occurred_at": now} if "occurred_at" in body else dict(body)
        if isinstance(body.get("applications"), list):
            body["applications"] = [occurring_now(item) for item in body["applications"]]
    return body


@pytest.fixture(scope="module")
def api_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A keys file and the key of its one entry, allowed every route."""
    keys = tmp_path_factory.mktemp("fuzz-keys") / "keys.json"
    return str(keys), create_key(keys, "fuzzer", ["score", "admin"])


@pytest.fixture(scope="module")
def api_url(
    trained_deployment: Paths, tmp_path_factory: pytest.TempPathFactory, api_key: tuple[str, str],
) -> Iterator[str]:
    paths = dataclasses.replace(trained_deployment, landing=tmp_path_factory.mktemp("fuzz") / "landing")
    port = free_port()
    settings = ApiSettings(writer_id="fuzz", port=port, model_poll_seconds=0, batch_max_items=10,
                           api_keys_file=Path(api_key[0]), require_auth=True)
    app = create_app(settings, paths)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, alive=thread.is_alive, timeout=60, poll_seconds=0.1)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_gets_a_server_error_and_every_answer_conforms(
    api_url: str, api_key: tuple[str, str], mode: GenerationMode,
) -> None:
    """Every operation of the document, valid or invalid requests generated from it, all checks."""
    api_schema = schemathesis.openapi.from_url(f"{api_url}/schema/openapi.json", config=CONFIG)
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def fuzz(case: schemathesis.Case) -> None:
            if mode is GenerationMode.POSITIVE:
                case.body = occurring_now(case.body)
            case.call_and_validate(headers={"Authorization": f"Bearer {api_key[1]}"})

        try:
            fuzz()
        except Unsatisfiable:  # negative: an operation with no input (GET /healthz) cannot be sent invalid data
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, FailureGroup) as exc:  # every operation's failures, not just the first one's
            failures[operation.label] = f"{type(exc).__name__}: {exc}"[:3000]
    assert operations >= 4, "the document lists the scoring routes and the probes"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
