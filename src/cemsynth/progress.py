"""The project's progress bar: one look for every command, shown only on a terminal.

Every bar is ``LABEL ━━━━━ done/total [fields...] [elapsed] remaining``, where ``LABEL`` is a
fixed word ("train", "preprocessing") or, without one, each task's description (predict shows
the file it works on). Rules:

- **shown only on a terminal**: a bar is drawn when the caller enables it *and* its console
  is a terminal; redirected output (a log file, a pipe, a test's capture) gets no bar at all,
  not even the final frame. A disabled bar still counts and still prints through its console,
  so callers need no second code path;
- **transient by default**: a bar is erased when its job ends, because every command prints
  its own summary line next; ``transient=False`` keeps the last frame (training's final
  losses and time).

Ground floor: imports only rich and :mod:`cemsynth.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from rich import get_console
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_T = TypeVar("_T")

NARROW_BAR_WIDTH = 20
"""Bar width in characters when extra fields need the room (rich's default is 40)."""


def progress_bar(
    label: str | None = None,
    *,
    console: Console | None = None,
    enabled: bool = True,
    transient: bool = True,
    fields: Sequence[str] = (),
    elapsed: bool = False,
) -> Progress:
    """A rich :class:`Progress` in the project's look; use it as a context manager.

    Args:
        label: fixed text at the left; None shows each task's description instead.
        console: where to draw (None: rich's global console, i.e. stdout).
        enabled: the caller's wish to show a bar; it is drawn only if ``console`` is also a
            terminal (see the module's rules).
        transient: erase the bar when it stops (False: keep the last frame).
        fields: names of task fields shown as text after the count, in this order; give them
            to ``add_task``/``update`` as keyword arguments (e.g. ``losses="G 0.1"``).
        elapsed: also show the time elapsed (before the time remaining).
    """
    shown_on = console if console is not None else get_console()
    columns: list[str | ProgressColumn] = [
        TextColumn(label) if label is not None else "[progress.description]{task.description}",
        BarColumn(bar_width=NARROW_BAR_WIDTH if fields else 40),
        MofNCompleteColumn(),
        *(TextColumn(f"{{task.fields[{name}]}}") for name in fields),
    ]
    if elapsed:
        columns.append(TimeElapsedColumn())
    columns.append(TimeRemainingColumn())
    return Progress(
        *columns,
        console=console,
        transient=transient,
        disable=not (enabled and shown_on.is_terminal),
    )


def track(
    items: Sequence[_T], label: str, *, console: Console | None = None, enabled: bool = True
) -> Iterator[_T]:
    """Yield ``items`` while a transient :func:`progress_bar` labelled ``label`` counts them."""
    bar = progress_bar(label, console=console, enabled=enabled)
    with bar:
        yield from bar.track(items, total=len(items), description=label)
