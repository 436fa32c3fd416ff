"""Progress on a terminal: a spinner with the elapsed time while a slow step runs.

Shown only when the console is a terminal, so logs, pipes and ``--json`` output stay clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def step(console: Console, description: str) -> Iterator[Callable[[str], None]]:
    """Show ``description`` with a spinner and the elapsed time until the block ends; yields a
    function that renames the step (e.g. the pipeline stage now running)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(escape(description), total=None)
        yield lambda text: progress.update(task, description=escape(text))
