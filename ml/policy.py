"""The decision policies a model version carries: both are stored, one is deployed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml.fairness import SINGLE_THRESHOLD, ThresholdPolicy


@dataclass(frozen=True)
class PolicySet:
    """Both decision policies of one model (equal-FPR group thresholds, single threshold), and
    which one the API applies (var ``deployed_policy`` when the thresholds were chosen)."""

    deployed: str
    policies: dict[str, ThresholdPolicy]

    def to_dict(self) -> dict[str, Any]:
        return {"deployed": self.deployed, "policies": {k: p.to_dict() for k, p in self.policies.items()}}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PolicySet:
        """Also reads the foundation's ``{"threshold": t}`` (one threshold for everyone)."""
        if "policies" not in raw:
            single = ThresholdPolicy(kind=SINGLE_THRESHOLD, thresholds={}, default_threshold=float(raw["threshold"]))
            return cls(SINGLE_THRESHOLD, {SINGLE_THRESHOLD: single})
        return cls(raw["deployed"], {k: ThresholdPolicy.from_dict(v) for k, v in raw["policies"].items()})

    @property
    def active(self) -> ThresholdPolicy:
        return self.policies[self.deployed]

    def threshold_for(self, group: str | None) -> float:
        """The deployed policy's threshold for one applicant's group."""
        return self.active.threshold_of(group)
