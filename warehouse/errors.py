"""The one base class of lendguard's errors: a message a person can act on, and an exit code.

Every failure the system expects (bad input, a missing snapshot, a refused gate, a busy port)
raises a subclass. The command line catches ``LendguardError`` and nothing broader, so anything
else is a bug and shows as one, with its traceback.
"""

from __future__ import annotations


class LendguardError(Exception):
    """An expected failure: ``str(error)`` is the user-facing reason, ``exit_code`` the CLI's exit status."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ProblemsError(LendguardError):
    """Input refused for every reason found at once (``problems``), so a person fixes them all in one go."""

    def __init__(self, headline: str, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{headline}:\n{listed}")
