"""LE / RC / skip classification from ImageType and SeriesDescription keywords."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.errors import ConfigError
from cemsynth.index.keywords import classify, default_keywords, load_keywords, words

RULES = default_keywords()


@pytest.mark.parametrize(
    ("image_type", "description", "manufacturer", "kind"),
    [
        ("ORIGINAL\\PRIMARY\\\\LOW_ENERGY", "CEM low energy", "cemsynth", "le"),
        ("DERIVED\\PRIMARY\\\\RECOMBINED", "CEM recombined", "cemsynth", "rc"),
        ("ORIGINAL\\PRIMARY\\\\HIGH_ENERGY", "", "HOLOGIC, Inc.", "skip"),
        ("DERIVED\\PRIMARY\\\\SUBTRACTION", "", "HOLOGIC, Inc.", "rc"),
        (None, "CESM low energy", "GE MEDICAL SYSTEMS", "le"),  # longest phrase wins
        (None, "CESM", "GE MEDICAL SYSTEMS", "rc"),
        (None, "R MLO SUB", "GE HEALTHCARE", "rc"),
        (None, "low-energy L CC", None, "le"),  # unknown vendor: all keywords
        ("ORIGINAL\\PRIMARY", "CEM recombined", None, "rc"),  # ImageType silent: description
    ],
)
def test_classify(image_type, description, manufacturer, kind) -> None:
    assert classify(image_type, description, manufacturer, RULES).kind == kind


def test_whole_words_only() -> None:
    verdict = classify(None, "LEFT CC", "GE", RULES)
    assert verdict.kind is None
    assert verdict.reason.startswith("unknown type: ImageType '', SeriesDescription 'LEFT CC'")


def test_vendor_keywords_apply_only_to_that_vendor() -> None:
    assert classify(None, "SUB", "GE MEDICAL SYSTEMS", RULES).kind == "rc"
    assert classify(None, "SUB", "HOLOGIC", RULES).kind is None  # "SUB" is a GE keyword


def test_a_tie_is_ambiguous_not_guessed() -> None:
    verdict = classify(None, "CESM LE", "GE", RULES)
    assert verdict.kind is None
    assert "ambiguous" in verdict.reason and "low-energy (LE)" in verdict.reason
    assert "recombined (CESM)" in verdict.reason


def test_description_breaks_an_image_type_tie() -> None:
    both = "DERIVED\\PRIMARY\\SUBTRACTION\\LOW_ENERGY"
    assert classify(both, "low energy", None, RULES).kind == "le"
    assert classify(both, "", None, RULES).kind is None


def test_words() -> None:
    assert words("CEM low-energy, L/CC") == ("CEM", "LOW", "ENERGY", "L", "CC")


def test_user_keyword_file_replaces_defaults(tmp_path: Path) -> None:
    path = tmp_path / "kw.yaml"
    path.write_text(
        "vendors:\n"
        "  acme:\n"
        "    manufacturer: [ACME]\n"
        "    le: {series_description: [plain]}\n"
        "    rc: {series_description: [iodine map]}\n",
        encoding="utf-8",
    )
    rules = load_keywords(path)
    assert classify(None, "Iodine map R CC", None, rules).kind == "rc"
    assert classify(None, "plain", "ACME corp", rules).kind == "le"
    assert classify("ORIGINAL\\PRIMARY\\\\LOW_ENERGY", "", None, rules).kind is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vendors: [a, b]\n", "expected one top-level key 'vendors'"),
        ("vendors:\n  x:\n    le: {image_type: [A]}\n", "needs both 'le' and 'rc'"),
        ("vendors:\n  x:\n    lo: {}\n", "unknown key(s) lo"),
        ("vendors:\n  x:\n    le: {image_type: {a: 1}}\n    rc: {}\n", "'x.le' must be a string"),
        ("vendors: {x: [\n", "not valid YAML at line"),
    ],
)
def test_malformed_keyword_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "kw.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_keywords(path)
    assert expected in str(exc.value)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)
