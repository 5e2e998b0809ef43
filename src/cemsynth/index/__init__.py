"""Find LE and RC images in a folder and pair them into a manifest (``cemsynth index``)."""

from cemsynth.index.indexer import (
    RULE_CHOICES,
    UNPAIRED_NAME,
    ImageEntry,
    IndexResult,
    UnpairedImage,
    find_image_files,
    index_folder,
    is_phantom_manifest,
    pair_entries,
    parse_rules,
    print_index_summary,
    write_index,
)
from cemsynth.index.keywords import (
    DEFAULT_KEYWORDS_YAML,
    Classification,
    KeywordRules,
    classify,
    default_keywords,
    load_keywords,
)
from cemsynth.index.naming import NameKeys, parse_cdd_cesm_name

__all__ = [
    "DEFAULT_KEYWORDS_YAML",
    "RULE_CHOICES",
    "UNPAIRED_NAME",
    "Classification",
    "ImageEntry",
    "IndexResult",
    "KeywordRules",
    "NameKeys",
    "UnpairedImage",
    "classify",
    "default_keywords",
    "find_image_files",
    "index_folder",
    "is_phantom_manifest",
    "load_keywords",
    "pair_entries",
    "parse_cdd_cesm_name",
    "parse_rules",
    "print_index_summary",
    "write_index",
]
