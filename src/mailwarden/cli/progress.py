"""A progress display on stderr for long triage runs, only when stderr is a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mailwarden.model import ReadStats


class LineProgress:
    """Lines read so far; log size in lines is unknown up front for compressed input."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("reading mail logs: {task.completed:,.0f} lines"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("read", total=None)
        self._progress.start()

    def update(self, stats: ReadStats) -> None:
        self._progress.update(self._task, completed=stats.lines_read)

    def stop(self) -> None:
        self._progress.stop()
