"""Vendor keywords that tell low-energy (LE) from recombined (RC) DICOM images.

A keyword file is YAML (the defaults below are one; ``docs/data-pipeline.md`` explains it)::

    vendors:
      <name>:
        manufacturer: [words matched in the Manufacturer tag]
        le:   {image_type: [values], series_description: [words or phrases]}
        rc:   {image_type: [...], series_description: [...]}
        skip: {image_type: [...], series_description: [...]}   # neither LE nor RC

How an image is classified (:func:`classify`):

1. Vendors without ``manufacturer`` words apply to every image (the defaults put the DICOM
   standard's ImageType terms there). Of the others, those whose ``manufacturer`` words appear
   in the Manufacturer tag are used; if none matches (or the tag is missing) all are used.
2. **ImageType** first: a value of the multi-valued tag equal to a keyword (case-insensitive)
   votes for that kind. Exactly one kind voted: that is the answer.
3. Otherwise (no vote, or votes for several kinds) **SeriesDescription**: a keyword matches when
   its words appear as consecutive whole words (case-insensitive; punctuation separates words,
   so ``LE`` does not match ``LEFT``). The kind with the longest matching phrase wins, so
   "CESM low energy" is LE ("low energy", two words) rather than RC ("CESM", one word).
4. No answer, or a tie: the image is "unknown" and reported with the reason; nothing is guessed.

A user file replaces the defaults entirely (copy :data:`DEFAULT_KEYWORDS_YAML` to start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cemsynth.errors import ConfigError

Kind = Literal["le", "rc", "skip"]
KINDS: tuple[Kind, ...] = ("le", "rc", "skip")
KIND_NAMES = {"le": "low-energy", "rc": "recombined", "skip": "skipped"}

# The one home of the default keywords. Phantom values are what cemsynth.phantom writes.
DEFAULT_KEYWORDS_YAML = """\
# Which DICOM images are low-energy (le), recombined (rc) or neither (skip).
# image_type: values of the ImageType tag, matched exactly (case-insensitive).
# series_description: words or phrases matched as whole words in SeriesDescription.
vendors:
  dicom-standard:  # no manufacturer: applies to every image (PS3.3 C.8.6.4.1 ImageType)
    le: {image_type: [LOW_ENERGY]}
    rc: {image_type: [SUBTRACTION]}
    skip: {image_type: [HIGH_ENERGY]}
  cemsynth-phantom:
    manufacturer: [cemsynth]
    le: {image_type: [LOW_ENERGY], series_description: [CEM low energy]}
    rc: {image_type: [RECOMBINED], series_description: [CEM recombined]}
  ge:
    manufacturer: [GE]
    le: {image_type: [LOW_ENERGY], series_description: [low energy, LE]}
    rc:
      image_type: [RECOMBINED, SUBTRACTION]
      series_description: [recombined, SUB, CESM]
    skip: {image_type: [HIGH_ENERGY], series_description: [high energy, HE]}
  hologic:
    manufacturer: [Hologic]
    le: {image_type: [LOW_ENERGY], series_description: [low energy]}
    rc: {image_type: [SUBTRACTION], series_description: [subtraction, I-View]}
    skip: {image_type: [HIGH_ENERGY], series_description: [high energy]}
  siemens:
    manufacturer: [Siemens]
    le: {image_type: [LOW_ENERGY], series_description: [low energy, LE]}
    rc:
      image_type: [RECOMBINED, SUBTRACTION]
      series_description: [recombined, subtracted, subtraction, TiCEM]
    skip: {image_type: [HIGH_ENERGY], series_description: [high energy, HE]}
"""

_WORD = re.compile(r"[A-Z0-9]+")
_KIND_KEYS = ("image_type", "series_description")


@dataclass(frozen=True)
class KindKeywords:
    """Keywords for one kind: ImageType values (upper case) and phrases (tuples of words)."""

    image_type: frozenset[str] = frozenset()
    series_description: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class VendorKeywords:
    """One vendor's manufacturer words and its keywords per kind."""

    name: str
    manufacturer: tuple[tuple[str, ...], ...]
    kinds: dict[Kind, KindKeywords]


@dataclass(frozen=True)
class KeywordRules:
    """All vendors' keywords, in file order; ``source`` names where they were read from."""

    vendors: tuple[VendorKeywords, ...]
    source: str = "built-in defaults"


@dataclass(frozen=True)
class Classification:
    """The kind of one image (None: unknown) and a one-line explanation."""

    kind: Kind | None
    reason: str
    vendor: str | None = None


def words(text: str) -> tuple[str, ...]:
    """Upper-case alphanumeric words of ``text``: "CEM low-energy" -> ("CEM", "LOW", "ENERGY")."""
    return tuple(_WORD.findall(text.upper()))


def default_keywords() -> KeywordRules:
    """The built-in keywords (:data:`DEFAULT_KEYWORDS_YAML`)."""
    return parse_keywords(DEFAULT_KEYWORDS_YAML, source="built-in defaults")


def load_keywords(path: Path) -> KeywordRules:
    """Read a keyword YAML file; raises :class:`ConfigError` (one line) if it is malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: keyword file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read keyword file ({exc})") from exc
    return parse_keywords(text, source=str(path))


def parse_keywords(text: str, source: str) -> KeywordRules:
    """Parse keyword YAML ``text``; ``source`` names it in error messages."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{source}: not valid YAML{at}") from exc
    if (
        not isinstance(data, dict)
        or set(data) != {"vendors"}
        or not isinstance(data["vendors"], dict)
    ):
        raise ConfigError(f"{source}: expected one top-level key 'vendors' holding a mapping")
    vendors = []
    for name, spec in data["vendors"].items():
        vendors.append(_parse_vendor(str(name), spec, source))
    if not vendors:
        raise ConfigError(f"{source}: 'vendors' is empty")
    return KeywordRules(vendors=tuple(vendors), source=source)


def classify(
    image_type: str | None,
    series_description: str | None,
    manufacturer: str | None,
    rules: KeywordRules,
) -> Classification:
    """Classify one DICOM image as LE, RC or skip from its tags (see the module docstring).

    ``image_type`` is the tag's values joined with backslashes, as in ``ImageMeta.extra``.
    """
    vendors, matched = _vendors_for(manufacturer, rules)
    vendor_label = "/".join(v.name for v in matched) or None
    type_values = {
        value.strip().upper() for value in (image_type or "").split("\\") if value.strip()
    }
    type_votes: dict[Kind, str] = {}
    for vendor in vendors:
        for kind, keywords in vendor.kinds.items():
            hits = sorted(type_values & keywords.image_type)
            if hits and kind not in type_votes:
                type_votes[kind] = hits[0]
    if len(type_votes) == 1:
        ((kind, value),) = type_votes.items()
        return Classification(kind, f"ImageType has {value}", vendor_label)

    description = words(series_description or "")
    phrase_votes: dict[Kind, tuple[str, ...]] = {}
    for vendor in vendors:
        for kind, keywords in vendor.kinds.items():
            for phrase in keywords.series_description:
                best = phrase_votes.get(kind, ())
                if len(phrase) > len(best) and _contains(description, phrase):
                    phrase_votes[kind] = phrase
    candidates = phrase_votes
    if len(type_votes) > 1:  # SeriesDescription may only break the ImageType tie
        candidates = {kind: phrase for kind, phrase in phrase_votes.items() if kind in type_votes}
    if candidates:
        longest = max(len(phrase) for phrase in candidates.values())
        winners = [kind for kind, phrase in candidates.items() if len(phrase) == longest]
        if len(winners) == 1:
            kind = winners[0]
            phrase_text = " ".join(candidates[kind])
            return Classification(kind, f"SeriesDescription has '{phrase_text}'", vendor_label)

    shown = f"ImageType '{image_type or ''}', SeriesDescription '{series_description or ''}'"
    if len(type_votes) > 1 or len(phrase_votes) > 1:
        named = ", ".join(
            f"{KIND_NAMES[kind]} ({type_votes.get(kind) or ' '.join(phrase_votes[kind])})"
            for kind in KINDS
            if kind in type_votes or kind in phrase_votes
        )
        return Classification(None, f"ambiguous: {shown} match {named}", vendor_label)
    return Classification(
        None,
        f"unknown type: {shown} match no keyword of {rules.source} (see --vendor-keywords)",
        vendor_label,
    )


def _vendors_for(
    manufacturer: str | None, rules: KeywordRules
) -> tuple[tuple[VendorKeywords, ...], tuple[VendorKeywords, ...]]:
    """(vendors to use, the vendors whose manufacturer words matched)."""
    tag_words = words(manufacturer or "")
    general = tuple(vendor for vendor in rules.vendors if not vendor.manufacturer)
    matched = tuple(
        vendor
        for vendor in rules.vendors
        if any(_contains(tag_words, phrase) for phrase in vendor.manufacturer)
    )
    return ((*general, *matched) if matched else rules.vendors), matched


def _contains(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n == 0:
        return False
    return any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))


def _parse_vendor(name: str, spec: object, source: str) -> VendorKeywords:
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: vendor '{name}' must be a mapping")
    unknown = set(spec) - {"manufacturer", *KINDS}
    if unknown:
        raise ConfigError(
            f"{source}: vendor '{name}' has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            "expected manufacturer, le, rc, skip"
        )
    manufacturer = tuple(
        phrase
        for phrase in (words(text) for text in _strings(spec.get("manufacturer"), source, name))
        if phrase
    )
    kinds: dict[Kind, KindKeywords] = {}
    for kind in KINDS:
        kind_spec = spec.get(kind)
        if kind_spec is None:
            continue
        where = f"{name}.{kind}"
        if not isinstance(kind_spec, dict) or not set(kind_spec) <= set(_KIND_KEYS):
            raise ConfigError(
                f"{source}: '{where}' must be a mapping with image_type and/or series_description"
            )
        image_type = frozenset(
            value.strip().upper()
            for value in _strings(kind_spec.get("image_type"), source, where)
            if value.strip()
        )
        phrases = tuple(
            phrase
            for phrase in (
                words(text) for text in _strings(kind_spec.get("series_description"), source, where)
            )
            if phrase
        )
        kinds[kind] = KindKeywords(image_type=image_type, series_description=phrases)
    if "le" not in kinds or "rc" not in kinds:
        raise ConfigError(f"{source}: vendor '{name}' needs both 'le' and 'rc' keywords")
    return VendorKeywords(name=name, manufacturer=manufacturer, kinds=kinds)


def _strings(value: object, source: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
        return [str(item) for item in value]
    raise ConfigError(f"{source}: '{where}' must be a string or a list of strings")
