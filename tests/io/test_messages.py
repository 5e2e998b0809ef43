"""One-line problem texts."""

from __future__ import annotations

from cemsynth.io.messages import internal_error, one_line, squash


def test_one_line_collapses_whitespace_and_names_empty_errors() -> None:
    assert one_line(ValueError("bad\n  value\tthere ")) == "bad value there"
    assert one_line(KeyError()) == "KeyError"
    assert squash(" a \n b ") == "a b"


def test_internal_error_names_type_message_and_debug() -> None:
    text = internal_error(RuntimeError("boom\nagain"))
    assert text.startswith("internal error (RuntimeError: boom again); rerun with --debug")
    assert "\n" not in text
