"""The one base of every configuration, and the YAML files that hold configurations.

Every settings class (preprocessing, model, training, evaluation, phantom, split, inference,
...) is a frozen dataclass that inherits :class:`ConfigFile`, which gives each the same:

- ``to_dict`` / ``from_dict``: a plain dict with a ``version`` key; one version check (a file
  written by a newer cemsynth is refused) and one unknown-key message;
- ``load`` / ``save``: a YAML file holding any subset of the fields (plus ``version``, and
  ``preset`` for configs that have a ``preset`` field), written atomically;
- ``get_preset``: lookup in the config's presets, with one "unknown preset" message;
- ``with_overrides``: the config with the given values that are not None (command-line
  options the user gave).

Each config keeps its own field validation in ``__post_init__``; while reading a file, the
errors it raises are prefixed with the file's name. YAML has no tuples: a list read for a field
whose default is a tuple becomes a tuple (nested lists too).

This module sits at the ground floor: it imports only :mod:`cemsynth.errors` and
:mod:`cemsynth.io`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import yaml

from cemsynth.errors import ConfigError, display_path
from cemsynth.io.atomic import write_text_atomic
from cemsynth.io.messages import one_line

T = TypeVar("T")


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (empty file: empty mapping).

    ``what`` names the settings in messages, e.g. "training config". Raises ConfigError naming
    the file for an unreadable file, invalid YAML or content that is not a mapping.
    """
    shown = display_path(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: cannot read {what} (not UTF-8 text)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML ({one_line(exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}: {what} must be a mapping of key: value "
            f"(expected a mapping, got a {type(data).__name__})"
        )
    return data


def write_yaml_mapping(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as YAML, keys in their given order, atomically."""
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


class ConfigFile:
    """Base of the frozen dataclasses that hold settings: dicts, YAML, presets, overrides.

    A subclass sets :attr:`KIND` (and :attr:`VERSION` once the meaning of a field changes),
    validates its fields in ``__post_init__`` (raising ConfigError), and, when it has presets,
    overrides :meth:`presets`. A config with a ``preset`` field records there the name of the
    preset it started from; its YAML files may name one with a ``preset`` key.
    """

    KIND: ClassVar[str] = "settings"
    """What the config is, for messages: "unknown {KIND} config key", "{KIND} preset"."""
    VERSION: ClassVar[int] = 1
    """Bump when the meaning of a field changes; reading refuses a newer version."""

    # --- presets --------------------------------------------------------------------------

    @classmethod
    def presets(cls) -> Mapping[str, ConfigFile]:
        """Named starting points, name -> config (none unless the subclass defines some)."""
        return {}

    @classmethod
    def get_preset(cls, name: str) -> Self:
        """The preset called ``name``; an unknown name raises ConfigError listing the valid ones."""
        presets = cls.presets()
        preset = presets.get(name) if isinstance(name, str) else None
        if not isinstance(preset, cls):
            choices = ", ".join(sorted(presets)) or "none"
            raise ConfigError(f"unknown {cls.KIND} preset {name!r}; valid presets: {choices}")
        return preset

    # --- dicts ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe dict, ``version`` first, then the fields in their order.

        Tuples become lists and nested configs their own ``to_dict``.
        """
        data: dict[str, Any] = {"version": self.VERSION}
        for name in self.field_names():
            data[name] = _plain(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Self:
        """Inverse of :meth:`to_dict`: every field not in ``data`` takes its default.

        ``source`` (e.g. a file name) starts every message. A newer ``version``, an unknown key
        or an invalid value raises ConfigError.
        """
        prefix = _prefix(source)
        values = cls._checked(data, prefix)
        for name, value in values.items():
            default = cls._default(name)
            if isinstance(default, ConfigFile) and isinstance(value, Mapping):
                values[name] = type(default).from_dict(value, source)
        return cls._build(lambda: cls(**values), prefix)

    # --- YAML files -----------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None, preset: str | None = None) -> Self:
        """The settings in the YAML file ``path`` (None: no file), see :meth:`from_overrides`.

        Raises ConfigError naming the file for an unreadable file, content that is not a
        mapping, a newer version, an unknown key or an invalid value.
        """
        if path is None:
            return cls.from_overrides({}, preset=preset)
        data = read_yaml_mapping(Path(path), f"{cls.KIND} config")
        return cls.from_overrides(data, preset=preset, source=display_path(path))

    def save(self, path: Path) -> None:
        """Write the settings as YAML (atomically); :meth:`load` reads them back equal."""
        write_yaml_mapping(Path(path), self.to_dict())

    @classmethod
    def from_overrides(
        cls, data: Mapping[str, Any], preset: str | None = None, source: str | None = None
    ) -> Self:
        """A preset (or the defaults) with the keys of ``data`` applied, as a YAML file reads.

        The starting point is the preset named by ``preset`` (the command line's ``--preset``),
        else by ``data["preset"]`` (configs with a ``preset`` field), else the defaults.
        A nested config (e.g. training's ``model``) may be given in part: its other fields
        keep the starting point's values.
        """
        prefix = _prefix(source)
        values = cls._checked(data, prefix)
        has_label = "preset" in cls.field_names()
        named = values.pop("preset", None) if has_label else None
        if named is not None and not isinstance(named, str):
            raise ConfigError(f"{prefix}preset must be a name, got {named!r}")
        name = preset if preset is not None else named
        if name is None:
            start = cls()
        elif preset is None:  # the name came from the file
            start = cls._build(lambda: cls.get_preset(name), prefix)
        else:
            start = cls.get_preset(name)
        if has_label and name is not None:
            values["preset"] = name
        return start._merged(values, source)

    # --- overrides ------------------------------------------------------------------------

    def with_overrides(self, **values: Any) -> Self:
        """These settings with every given value that is not None (an option left out).

        An unknown name raises ConfigError listing the valid ones; the new values are validated
        like any others.
        """
        given = {name: value for name, value in values.items() if value is not None}
        _refuse_unknown(self.KIND, "", given, self.field_names())
        return _replace(self, self._implied(given))

    @classmethod
    def _implied(cls, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` with what setting them implies (a subclass hook; default: nothing)."""
        return changes

    # --- helpers --------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The dataclass fields, in order (the keys a file may hold besides ``version``)."""
        return tuple(item.name for item in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def _default(cls, name: str) -> Any:
        item = {f.name: f for f in dataclasses.fields(cls)}[name]  # type: ignore[arg-type]
        if item.default_factory is not dataclasses.MISSING:
            return item.default_factory()
        return None if item.default is dataclasses.MISSING else item.default

    @classmethod
    def _checked(cls, data: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        """``data`` without its ``version`` key, after the version and key checks."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{prefix}{cls.KIND} config must be a mapping, got a {type(data).__name__}"
            )
        values = dict(data)
        version = values.pop("version", cls.VERSION)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(
                f"{prefix}{cls.KIND} config version must be a whole number >= 1, got {version!r}"
            )
        if version > cls.VERSION:
            raise ConfigError(
                f"{prefix}{cls.KIND} config version {version} is newer than this cemsynth "
                f"supports ({cls.VERSION}); upgrade cemsynth"
            )
        _refuse_unknown(cls.KIND, prefix, values, ("version", *cls.field_names()))
        for name, value in values.items():
            if isinstance(value, list) and isinstance(cls._default(name), tuple):
                values[name] = _tuples(value)
        return values

    def _merged(self, values: dict[str, Any], source: str | None) -> Self:
        """These settings with ``values`` (checked keys) applied; nested mappings merge."""
        for name, value in values.items():
            current = getattr(self, name)
            if isinstance(current, ConfigFile) and isinstance(value, Mapping):
                nested = current._checked(value, _prefix(source))
                values[name] = current._merged(nested, source)
        return self._build(lambda: _replace(self, self._implied(values)), _prefix(source))

    @staticmethod
    def _build(make: Callable[[], T], prefix: str) -> T:
        """``make()``, its value errors prefixed with the file (or other source) they are from."""
        if not prefix:
            return make()
        try:
            return make()
        except ConfigError as exc:
            raise ConfigError(f"{prefix}{exc}") from None
        except (TypeError, ValueError) as exc:  # a value of a type the checks did not expect
            raise ConfigError(f"{prefix}{one_line(exc)}") from None


def _prefix(source: str | None) -> str:
    return f"{source}: " if source else ""


def _refuse_unknown(
    kind: str, prefix: str, values: Mapping[str, Any], valid: tuple[str, ...]
) -> None:
    unknown = [repr(key) for key in values if key not in valid]
    if unknown:
        keys = "key" if len(unknown) == 1 else "keys"
        raise ConfigError(
            f"{prefix}unknown {kind} config {keys} {', '.join(unknown)}; "
            f"valid keys: {', '.join(valid)}"
        )


def _replace(config: Any, changes: dict[str, Any]) -> Any:
    return dataclasses.replace(config, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, ConfigFile):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(item) for item in value)
    return value
