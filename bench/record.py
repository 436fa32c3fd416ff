"""What every benchmark does with its result: print it, and keep it where ``--out`` says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(record: dict[str, Any], out: Path | None) -> None:
    """Print ``record`` as JSON and, with ``out``, write it there too (the file bench/README.md cites)."""
    text = json.dumps(record, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
