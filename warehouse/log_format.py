"""One log format for every lendguard process: readable text on a terminal, JSON lines otherwise.

Why JSON lines off a terminal: a server's log goes to journald, a file or a CI log, where a line
is parsed, not read: each record is one JSON object (``time``, ``level``, ``logger``, ``message``,
any structured fields the record carries, such as the API's access-log fields, and ``exception``).
On a terminal the same records are one text line each. The CLI and every server process (the API,
its spawned workers, the dashboard) take their formatter from :func:`formatter_for`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
"""What every log record has; anything else on a record came from ``extra=`` and is a field of its own."""


class JsonLines(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        document.update((key, value) for key, value in vars(record).items()
                        if key not in _RECORD_ATTRIBUTES and not key.startswith("_"))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def formatter_for(stream: TextIO) -> logging.Formatter:
    """Text when ``stream`` is a terminal, JSON lines otherwise."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no such method, or the stream is closed
        terminal = False
    return logging.Formatter(TEXT_FORMAT) if terminal else JsonLines()


def configure_unconfigured(level: int = logging.INFO) -> None:
    """For a process that starts with no logging set up (a spawned API worker, a server run directly):
    one handler on stderr in the format above. A process the CLI started keeps the CLI's."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(sys.stderr))
    root.addHandler(handler)
    root.setLevel(level)
