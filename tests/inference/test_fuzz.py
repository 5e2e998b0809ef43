"""The fuzz campaign in CI: a few hundred mutated inputs through index, preprocess, predict.

Every input is handled as one line or an output: no traceback, no hang, bounded memory, and
every batch finishes (``make fuzz`` runs 10,000 cases; docs/data-pipeline.md has its result).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.testing.fuzz import HOSTILE_TAGS, KINDS, run_campaign, write_hostile_tag

CI_CASES = 200
PEAK_MEMORY_MB = 2500.0
"""The commands' peak resident memory: torch and a 712 x 598 phantom image fit well under it;
a memory bomb that got through would not."""


@pytest.mark.slow
def test_fuzz_campaign_has_no_traceback_hang_or_memory_blowup(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path
) -> None:
    seeds = sorted(phantom_exam.glob("P0001/*_LE.dcm"))
    report = run_campaign(
        tmp_path, seeds, phantom_exam / "P0001" / "L_CC_RC.dcm", tiny_run, CI_CASES, seed=0,
        timeout_s=400.0,
    )  # fmt: skip
    summary = report.to_dict()
    print(summary)
    assert set(report.kinds) == set(KINDS)  # every kind of mutation was tried
    details = "\n".join(f"{c.command}: rc {c.returncode}\n{c.stderr_tail}" for c in report.commands)
    assert report.hangs == 0, details
    assert report.tracebacks == 0, details
    assert all(c.returncode in (0, 1) for c in report.commands), details
    assert report.peak_rss_mb < PEAK_MEMORY_MB, summary


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # pydicom, while writing them
def test_every_hostile_tag_is_written_and_read_as_one_line_or_an_image(
    phantom_exam: Path, tmp_path: Path
) -> None:
    """The generator itself must not stop on a value pydicom refuses to convert (a DS of
    "abc"): each hostile value is in the file, and reading it is an image or one line."""
    from cemsynth.errors import InputFileError
    from cemsynth.io.reader import read_image

    source = phantom_exam / "P0001" / "L_CC_LE.dcm"
    for index, (keyword, value) in enumerate(HOSTILE_TAGS):
        case = write_hostile_tag(tmp_path, index, source, keyword, value)
        assert case.path.read_bytes() != source.read_bytes() or value is None, (keyword, value)
        try:
            read_image(case.path)
        except InputFileError as exc:
            assert "\n" not in str(exc) and str(case.path) in str(exc), str(exc)
