"""BISG proxies at the API: the surname's Census evidence instead of the name, in the log.

A loan book whose contract declares proxies (``surname``, ``zcta``, optionally ``first_name``,
``census_tract``) is tested for fairness with BISG: P(group | surname, area), computed by dbt. The
log must let dbt do that per request without keeping the applicant's name (issue #18, item 5). So
when a request arrives the API looks its surname up in the Census surname table
(``ref_census_surnames`` of the published snapshot, read once at start-up) and logs that row,
P(group | surname) per Census group, with the area; the name itself is logged only when
``LENDGUARD_LOG_PROXY_NAMES`` is true. dbt's ``bisg_from_surname_evidence`` macro combines the
evidence with P(area | group) exactly as ``bisg_probabilities`` does with a name.

The lookup follows the SQL macro ``lg_normalize_surname`` and its compound-name rule character for
character (a test holds them equal on hostile spellings): digits, ASCII punctuation and white space
removed, upper case, a trailing JR, SR, III or IV dropped; a name not in the table is looked up by
its first part, then its last part; still not found (or no surname sent), the 'ALL OTHER NAMES' row.
"""

from __future__ import annotations

import json
import logging
import re
import string
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from api.body_checks import MAX_DEPTH, json_depth
from warehouse.datasets import CENSUS_GROUPS
from warehouse.errors import LendguardError
from warehouse.loan_book import SURNAME, LoanBookSchema
from warehouse.marts import open_marts
from warehouse.paths import Paths
from warehouse.prediction_log import PROXY_NAME_ROLES, SURNAME_EVIDENCE_COLUMNS, SURNAME_MATCH_COLUMN
from warehouse.publish import SnapshotMissingError

log = logging.getLogger(__name__)

ALL_OTHER_NAMES = "ALL OTHER NAMES"
WITHHELD = "[withheld]"
"""What a refused body's name fields read in the log when names are not kept."""
_REMOVED = str.maketrans("", "", string.digits + string.punctuation + " \t\n\v\f\r")
"""RE2's ``[0-9[:punct:][:space:]]`` (the SQL macro's class): ASCII digits, punctuation, white space."""
_SUFFIXES = ("JR", "SR", "III", "IV")
_FIRST_PART = re.compile(r"([^- ]+)[- ]")
_LAST_PART = re.compile(r"[- ]([^- ]+)\Z")


class ReferenceTablesMissingError(LendguardError):
    """A contract with a surname proxy is served, but the Census surname table is not in the warehouse."""


def normalize_surname(text: str) -> str:
    """As the SQL macro ``lg_normalize_surname``: characters removed, upper case, suffixes dropped.

    Upper case one character at a time (DuckDB's ``upper`` maps each character to one: 'ß' stays
    one character where Python's ``str.upper`` would make it 'SS')."""
    removed = text.translate(_REMOVED)
    upper = "".join(char.upper() if len(char.upper()) == 1 else char for char in removed)
    for suffix in _SUFFIXES:
        upper = upper.removesuffix(suffix)
    return upper


def _upper_trimmed(text: str) -> str:
    """SQL ``upper(trim(text))``: DuckDB's trim removes spaces only."""
    return "".join(char.upper() if len(char.upper()) == 1 else char for char in text.strip(" "))


@dataclass(frozen=True)
class SurnameEvidence:
    """One request's evidence: P(Census group | surname) (None where the table has no value) and how it matched."""

    probabilities: tuple[float | None, ...]
    match: str

    def log_fields(self) -> dict[str, Any]:
        return {**dict(zip(SURNAME_EVIDENCE_COLUMNS, self.probabilities, strict=True)),
                SURNAME_MATCH_COLUMN: self.match}


class SurnameTable:
    """The Census surname table, held in memory for the request-time lookup (about 160,000 names)."""

    def __init__(self, surnames: list[str], probabilities: np.ndarray) -> None:
        self._index = {surname: row for row, surname in enumerate(surnames)}
        self._probabilities = probabilities
        if ALL_OTHER_NAMES not in self._index:
            raise ReferenceTablesMissingError(f"the Census surname table has no {ALL_OTHER_NAMES!r} row")

    @classmethod
    def from_snapshot(cls, paths: Paths) -> SurnameTable:
        """``ref_census_surnames`` of the published snapshot, one row per surname, a column per Census group."""
        fix = "run `lendguard reference-data load` and `lendguard build`"
        try:
            with open_marts(paths) as marts:
                if "ref_census_surnames" not in marts.tables():
                    raise ReferenceTablesMissingError(f"the published warehouse has no Census surname table: {fix}")
                pivots = ", ".join(f"max(case when census_group = '{group}' then probability end) as {group}"
                                   for group in CENSUS_GROUPS)
                frame = marts.frame(
                    f"select surname, {pivots} from ref_census_surnames group by surname order by surname")
        except SnapshotMissingError as exc:
            raise ReferenceTablesMissingError(f"{exc}; the Census surname table is needed for BISG: {fix}") from exc
        if frame.empty:
            raise ReferenceTablesMissingError(f"the Census surname table is empty: {fix}")
        table = cls(frame["surname"].tolist(), frame[list(CENSUS_GROUPS)].to_numpy(dtype=float))
        log.info("Census surname table loaded: %d surnames", len(frame))
        return table

    def __len__(self) -> int:
        return len(self._index)

    def lookup(self, surname: str | None) -> SurnameEvidence:
        """The table's row for ``surname``, by the method's rules and fallbacks."""
        if surname is None:
            return self._evidence(ALL_OTHER_NAMES, "missing")
        upper = _upper_trimmed(surname)
        first, last = _FIRST_PART.match(upper), _LAST_PART.search(upper)
        candidates = (
            (normalize_surname(surname), "surname"),
            (normalize_surname(first.group(1)) if first else "", "compound_first_part"),
            (normalize_surname(last.group(1)) if last else "", "compound_last_part"),
        )
        for key, match in candidates:
            if key in self._index:
                return self._evidence(key, match)
        return self._evidence(ALL_OTHER_NAMES, "all_other_names")

    def _evidence(self, key: str, match: str) -> SurnameEvidence:
        row = self._probabilities[self._index[key]]
        return SurnameEvidence(tuple(None if np.isnan(value) else float(value) for value in row), match)


class ProxyLogging:
    """What the log keeps of a request's proxies, for one contract: the areas always, the surname's
    evidence, the names only when ``keep_names``; a refused body's names withheld unless kept."""

    def __init__(self, loan_book: LoanBookSchema, surnames: SurnameTable | None, *, keep_names: bool) -> None:
        self.proxies = dict(loan_book.proxies)
        self.surnames = surnames
        self.keep_names = keep_names
        self.name_columns = tuple(self.proxies[role] for role in PROXY_NAME_ROLES if role in self.proxies)

    @classmethod
    def for_contract(cls, loan_book: LoanBookSchema, paths: Paths, *, keep_names: bool) -> ProxyLogging | None:
        """None for a contract without proxies; raises ``ReferenceTablesMissingError`` when it has a
        surname proxy and the warehouse has no Census surname table."""
        if not loan_book.proxies:
            return None
        surnames = SurnameTable.from_snapshot(paths) if SURNAME in loan_book.proxies else None
        return cls(loan_book, surnames, keep_names=keep_names)

    def row_fields(self, application: msgspec.Struct) -> dict[str, Any]:
        """The log columns of an answered application's proxies."""
        fields: dict[str, Any] = {column: getattr(application, column, None) for column in self.proxies.values()}
        if not self.keep_names:
            fields.update(dict.fromkeys(self.name_columns))
        if self.surnames is not None:
            fields.update(self.surnames.lookup(getattr(application, self.proxies[SURNAME], None)).log_fields())
        return fields

    def fingerprinted(self, body: msgspec.Struct) -> msgspec.Struct:
        """``body`` as its idempotency fingerprint sees it: the names left out unless the log keeps
        them. The fingerprint is logged, and with the other inputs logged beside it a hash of the
        whole body could be matched against the Census's list of surnames; the names never change
        the decision, so a retry differing only in them may share its answer."""
        if self.keep_names or not self.name_columns:
            return body
        applications = getattr(body, "applications", None)
        if isinstance(applications, list):
            return msgspec.structs.replace(body, applications=[self._unnamed(a) for a in applications])
        return self._unnamed(body)

    def _unnamed(self, application: msgspec.Struct) -> msgspec.Struct:
        return msgspec.structs.replace(application, **dict.fromkeys(self.name_columns))

    def redact_body(self, text: str | None) -> tuple[str | None, str | None]:
        """A refused body fit for the log, and a note: as received when names are kept; otherwise
        re-encoded with every name field's value withheld (top level and each batch application),
        or not kept at all when it is not a JSON object (a name could be anywhere in it)."""
        if text is None or self.keep_names or not self.name_columns:
            return text, None
        if json_depth(text.encode()) > MAX_DEPTH:
            return None, "raw_body: not kept (nested too deep to read; it may hold names: LENDGUARD_LOG_PROXY_NAMES)"
        try:
            body = json.loads(text)
        except ValueError:
            return None, "raw_body: not kept (not JSON; it may hold names: LENDGUARD_LOG_PROXY_NAMES)"
        if not isinstance(body, dict):
            return None, "raw_body: not kept (not a JSON object; it may hold names: LENDGUARD_LOG_PROXY_NAMES)"
        applications = body.get("applications")
        for entry in [body, *(applications if isinstance(applications, list) else [])]:
            if isinstance(entry, dict):
                _withhold(entry, self.name_columns)
        return json.dumps(body, ensure_ascii=False), "raw_body: names withheld (LENDGUARD_LOG_PROXY_NAMES)"


def _withhold(entry: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if entry.get(name) is not None:
            entry[name] = WITHHELD

