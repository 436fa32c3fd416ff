"""The model search space: the candidates the ``train`` stage cross-validates.

The space is declared with every other policy value in the ``vars`` of ``dbt_project.yml``
(``model_candidates``: name, family, parameters), so a lender widens or narrows it without code;
``lendguard train --candidates NAME[,NAME]`` (and ``pipeline run``) restricts one run to some of
them by name. Every family in :data:`FAMILIES` registers (skops), exports to PMML and compiles to
SQL exactly; ``tests/integration/test_model_families.py`` walks each one to an approval.

Light on purpose (no scikit-learn): the CLI checks ``--candidates`` and completes its names without
paying for the ML imports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warehouse.errors import LendguardError
from warehouse.project import project_vars

SEARCH_SPACE_VAR = "model_candidates"
"""The ``dbt_project.yml`` var holding the search space."""
FAMILIES: tuple[str, ...] = ("logistic_regression", "hist_gradient_boosting", "lightgbm")
"""The model families ``ml.train.build_pipeline`` builds, each known to go from fit to approval."""


class CandidateError(LendguardError):
    """An unknown candidate name, or a search space declared in a form training cannot use."""


@dataclass(frozen=True)
class Candidate:
    """One model family with one setting of its parameters."""

    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)


def search_space(declared: object | None = None) -> tuple[Candidate, ...]:
    """The declared candidates (``declared``, else the ``model_candidates`` var), checked."""
    declared = project_vars().get(SEARCH_SPACE_VAR) if declared is None else declared
    where = f"dbt_project.yml var {SEARCH_SPACE_VAR}"
    if not isinstance(declared, list) or not declared:
        raise CandidateError(f"{where}: expected a non-empty list of candidates (name, family, params)")
    candidates: list[Candidate] = []
    for index, entry in enumerate(declared):
        if not isinstance(entry, Mapping) or set(entry) - {"name", "family", "params"}:
            raise CandidateError(f"{where}[{index}]: expected a mapping with name, family and params only")
        name, family, params = entry.get("name"), entry.get("family"), entry.get("params", {})
        if not isinstance(name, str) or not name or "," in name or name != name.strip():
            raise CandidateError(f"{where}[{index}]: name {name!r} must be a non-empty text without commas")
        if family not in FAMILIES:
            raise CandidateError(f"{where}[{index}] ({name}): unknown family {family!r}; known: {', '.join(FAMILIES)}")
        if not isinstance(params, Mapping) or not all(isinstance(key, str) for key in params):
            raise CandidateError(f"{where}[{index}] ({name}): params must map parameter names to values")
        candidates.append(Candidate(name, family, dict(params)))
    names = [candidate.name for candidate in candidates]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CandidateError(f"{where}: candidate name(s) declared twice: {', '.join(repeated)}")
    return tuple(candidates)


def named(name: str) -> Candidate:
    """One declared candidate by name."""
    [candidate] = choose([name])
    return candidate


def choose(names: Sequence[str] | None = None, space: Sequence[Candidate] | None = None) -> tuple[Candidate, ...]:
    """The candidates called ``names`` (in the search space's order), or the whole space for None.

    An unknown name raises :class:`CandidateError` listing the valid ones.
    """
    space = search_space() if space is None else tuple(space)
    if names is None:
        return space
    if not names:
        raise CandidateError("no candidate named: give at least one of " + ", ".join(c.name for c in space))
    unknown = [name for name in names if name not in {c.name for c in space}]
    if unknown:
        raise CandidateError(
            f"unknown candidate(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(c.name for c in space)}"
        )
    return tuple(candidate for candidate in space if candidate.name in names)


def parse_names(text: str) -> list[str]:
    """``NAME[,NAME]`` as the CLI takes it: names split on commas, blanks around them dropped."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise CandidateError(f"empty candidate name in {text!r}: expected NAME[,NAME]")
    return names
