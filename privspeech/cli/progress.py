"""The progress reporter the CLI hands the library: rich bars on stderr."""

from __future__ import annotations


class Bars:
    """A rich progress bar per task name while stderr is a terminal and not --quiet; nothing otherwise.

    ``with Bars(env) as progress:`` gives the callback ``progress(name, done, total)`` (total None: not known).
    """

    def __init__(self, env):
        self.env = env
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if self.env.show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, \
                TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=self.env.console(), transient=True)
            self.bar.start()
        return self.update

    def update(self, name: str, done: int, total: int | None) -> None:
        if self.bar is None:
            return
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(name, total=total)
        self.bar.update(self.tasks[name], completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
