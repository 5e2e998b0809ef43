"""The project's progress bar: drawn only on a terminal when enabled, one look, counts anyway."""

from __future__ import annotations

import io

from rich.console import Console

from cemsynth.progress import progress_bar, track


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=terminal, width=120, color_system=None)
    return console, buffer


def test_drawn_only_on_a_terminal_and_when_enabled() -> None:
    cases = [(True, True, True), (True, False, False), (False, True, False)]
    for terminal, enabled, drawn in cases:
        console, buffer = _console(terminal)
        with progress_bar("work", console=console, enabled=enabled, transient=False) as bar:
            task = bar.add_task("work", total=3)
            bar.advance(task, 3)
            assert bar.tasks[0].completed == 3  # a hidden bar still counts
        assert ("work" in buffer.getvalue()) is drawn, (terminal, enabled, buffer.getvalue())


def test_the_last_frame_shows_label_count_and_fields() -> None:
    console, buffer = _console(True)
    with progress_bar("train", console=console, transient=False, fields=("losses",)) as bar:
        task = bar.add_task("train", total=4, losses="")
        bar.update(task, advance=4, losses="G 0.125")
    frames = [line for line in buffer.getvalue().splitlines() if "4/4" in line]
    assert frames, buffer.getvalue()
    last = frames[-1][frames[-1].index("train") :]  # after the terminal's cursor codes
    assert last.split()[0] == "train" and "G 0.125" in last


def test_a_hidden_bar_still_prints_through_its_console() -> None:
    console, buffer = _console(False)
    with progress_bar("x", console=console) as bar:
        bar.console.print("step 4: val MAE 0.1")
    assert buffer.getvalue() == "step 4: val MAE 0.1\n"


def test_track_yields_every_item_in_order() -> None:
    console, _ = _console(False)
    assert list(track(["a", "b", "c"], "scanning", console=console)) == ["a", "b", "c"]
