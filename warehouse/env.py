"""Reading settings from the environment: one rule for every package (blank means unset)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

Number = TypeVar("Number", int, float)


def env_number(
    env: Mapping[str, str], name: str, default: Number, kind: type[Number], *, error: type[ValueError] = ValueError
) -> Number:
    """``env[name]`` as ``kind``; ``default`` when unset or blank; ``error`` naming the variable otherwise."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise error(f"{name}={raw!r} is not a valid {kind.__name__}") from None
