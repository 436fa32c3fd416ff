"""The composition root: ``create_app()`` builds the Litestar app around one model bundle.

Why the bundle is loaded in ``create_app`` and not in the lifespan: the request body is derived
from the model's loan-book contract, and Litestar fixes a handler's body type (validation and
OpenAPI) when the app is constructed. So the factory loads the bundle for the configured alias
(a few seconds, once), builds the ``ScoreRequest`` Struct from its contract and the handlers
around it (``api.plugin``); the lifespan then opens what needs a running event loop (the scorer,
the log writer, the registry poller) and closes it on shutdown, flushing every pending log row.

While it runs, the app follows its alias (``api.reload``): when the alias moves to a version with
the same contract, the new version is loaded beside the old one and swapped in without dropping a
request; a version with another contract needs a restart (the body type is fixed) and is refused.

If no bundle can be loaded (no version carries the alias, the registry is unreachable) the app
still starts, answers /healthz, reports 503 on /readyz and /v1/score, and logs one line naming the
tracking URI and alias. It stays that way until restarted: its body type needs a contract.

Every request to the scoring endpoint, answered or rejected, is written to the prediction log;
an answer whose row could not be made durable becomes a 503 instead of a decision.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from litestar import Litestar

from api.body_checks import StrictJSONRequest
from api.http import LOGGED_OPT, Serving
from api.openapi import ClosedStructSchemaPlugin, ErrorResponsesPlugin
from api.plugin import LendguardPlugin
from api.proxies import ProxyLogging
from api.schemas import build_request_struct
from warehouse.paths import Paths, get_paths
from warehouse.settings import ApiSettings, get_settings, redact_uri

if TYPE_CHECKING:
    from ml.registry import ModelBundle

log = logging.getLogger(__name__)


def create_app(
    settings: ApiSettings | None = None, paths: Paths | None = None, serving: Serving | None = None,
) -> Litestar:
    """The scoring API for the bundle ``settings.model_alias`` points at in ``paths``' registry
    (or for ``serving``, one loaded already: :func:`load_serving`).

    ``settings`` left as None are this process's (``warehouse.settings.get_settings``).
    """
    settings = settings or get_settings().api
    paths = paths or get_paths()
    serving = serving or load_serving(paths, settings.model_alias, keep_proxy_names=settings.log_proxy_names)
    return Litestar(
        plugins=[
            LendguardPlugin(settings, paths, serving),
            ClosedStructSchemaPlugin(),  # bodies that refuse unknown fields say so in the document
            ErrorResponsesPlugin(LOGGED_OPT),  # every status each route answers, and its security
        ],
        request_class=StrictJSONRequest,  # JSON bodies: content type, UTF-8, depth, strict types (api.body_checks)
        debug=False,
        logging_config=None,  # keep the process's logging (warehouse.log_format); Litestar's would replace it
    )


def load_serving(
    paths: Paths, alias: str, *, keep_proxy_names: bool = False, bundle: ModelBundle | None = None,
) -> Serving:
    """The bundle ``alias`` points at (or ``bundle``, loaded already), or why there is none (logged
    as one line, no traceback).

    A contract with BISG proxies also needs the Census surname table (read here, once per process:
    ``api.proxies``); without it the app is not ready, and says why."""
    from ml.registry import load_bundle  # noqa: PLC0415 - start-up cost: imports mlflow (about a second)

    try:
        bundle = bundle or load_bundle(paths, alias)
        build_request_struct(bundle.loan_book)  # refuse an unservable contract here, not per request
        proxies = ProxyLogging.for_contract(bundle.loan_book, paths, keep_names=keep_proxy_names)
    except Exception as exc:  # whatever the cause, the app starts and says why it is not ready
        log.error(  # one clear line, no traceback: an expected deployment state, not a bug
            "not ready: cannot load model alias %r from tracking URI %s: %s: %s",
            alias, redact_uri(paths.tracking_uri), type(exc).__name__,
            str(exc).replace(paths.tracking_uri, redact_uri(paths.tracking_uri)),
        )
        return Serving(alias, None, f"no model loaded for alias {alias!r} ({type(exc).__name__})", {})
    log.info("serving %s version %s (alias %r, run %s)", bundle.name, bundle.version, alias, bundle.run_id)
    allowed: dict[str, tuple[Any, ...]] = {
        f.name: tuple(int(v) if f.integer else v for v in f.allowed)
        for f in bundle.loan_book.numeric_features if f.allowed is not None
    }
    if bundle.loan_book.group_column is not None and bundle.loan_book.group_values is not None:
        allowed[bundle.loan_book.group_column] = bundle.loan_book.group_values
    return Serving(alias, bundle, None, allowed, loaded_at=datetime.now(UTC), proxies=proxies)
