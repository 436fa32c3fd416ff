"""The ceiling for bench/api_load.py: a bare Litestar app under the same uvicorn settings.

``POST /v1/score`` parses a JSON object and answers a constant decision, with no model, no log and
no validation beyond JSON: what this machine's Litestar + uvicorn can do at best.

    .venv/bin/python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from litestar import Litestar, post


@post("/v1/score", status_code=200, sync_to_thread=False)
def score(data: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": "bare", "probability": 0.1, "threshold": 0.2, "decision": "auto_approve",
            "application_id": data.get("application_id")}


app = Litestar(route_handlers=[score], debug=False)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
