"""One log format: text on a terminal, one JSON object per line elsewhere, structured fields kept."""

from __future__ import annotations

import json
import logging
import os
import sys

from warehouse.log_format import JsonLines, formatter_for


def record(**extra: object) -> logging.LogRecord:
    made = logging.LogRecord("api.access", logging.INFO, __file__, 1, "%s %s %d", ("GET", "/", 200), None)
    made.__dict__.update(extra)
    return made


def test_json_lines_carry_the_message_and_the_fields_given() -> None:
    line = JsonLines().format(record(method="GET", path="/", status=200, duration_ms=1.5))
    assert "\n" not in line
    document = json.loads(line)
    assert document.pop("time").endswith("+00:00")
    assert document == {"level": "INFO", "logger": "api.access", "message": "GET / 200",
                        "method": "GET", "path": "/", "status": 200, "duration_ms": 1.5}


def test_an_exception_stays_inside_its_one_line() -> None:
    try:
        raise ValueError("bad [input]\nsecond line")
    except ValueError:
        failed = record()
        failed.exc_info = sys.exc_info()
    line = JsonLines().format(failed)
    assert "\n" not in line
    assert "ValueError: bad [input]\nsecond line" in json.loads(line)["exception"]


def test_a_terminal_gets_text_and_anything_else_json() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        assert not isinstance(formatter_for(terminal), JsonLines)
        assert formatter_for(terminal).format(record()).endswith(" INFO api.access: GET / 200")
    os.close(leader)
    with open(os.devnull, "w") as pipe_like:  # noqa: PTH123 - a plain text stream, as a service manager gives
        assert isinstance(formatter_for(pipe_like), JsonLines)
