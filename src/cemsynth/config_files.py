"""Reading and writing the YAML files that hold configurations.

One place for the file-level errors every config loader needs: unreadable file, invalid YAML,
content that is not a mapping. Each config module then checks its own keys and values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cemsynth.errors import ConfigError
from cemsynth.io.atomic import write_text_atomic
from cemsynth.io.messages import one_line


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (empty file: empty mapping).

    ``what`` names the settings in messages, e.g. "training config". Raises ConfigError naming
    the file for an unreadable file, invalid YAML or content that is not a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({one_line(exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: {what} must be a mapping of key: value "
            f"(expected a mapping, got a {type(data).__name__})"
        )
    return data


def write_yaml_mapping(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as YAML, keys in their given order, atomically."""
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
