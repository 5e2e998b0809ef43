"""PreprocessConfig: defaults, presets, YAML, dict round trip, errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.errors import ConfigError
from cemsynth.preprocess.config import (
    CONFIG_VERSION,
    PRESETS,
    PreprocessConfig,
    get_preset,
    load_preprocess_config,
    save_preprocess_config,
)


def test_defaults_are_the_papers_values() -> None:
    config = PreprocessConfig()
    assert config.downsample_factor == 4.0
    assert config.target_spacing_mm is None
    assert config.le_window == (1800.0, 2900.0)
    assert config.rc_window == (1700.0, 2400.0)
    assert config.output_spacing_mm((0.1, 0.1)) == pytest.approx((0.4, 0.4))


def test_presets() -> None:
    assert get_preset("paper") == PreprocessConfig()
    assert get_preset("8bit").le_window == (0.0, 255.0)
    assert get_preset("8bit").rc_window == (0.0, 255.0)
    assert get_preset("phantom").target_spacing_mm == 0.4
    assert get_preset("phantom").le_window == get_preset("paper").le_window


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_preset("cdd")
    message = str(info.value)
    assert "'cdd'" in message
    for name in PRESETS:
        assert name in message


def test_dict_round_trip_carries_version() -> None:
    config = PreprocessConfig(target_spacing_mm=1.0, downsample_factor=None, anti_alias=True)
    data = config.to_dict()
    assert data["version"] == CONFIG_VERSION
    assert PreprocessConfig.from_dict(data) == config


def test_newer_version_is_refused() -> None:
    data = PreprocessConfig().to_dict()
    data["version"] = CONFIG_VERSION + 1
    with pytest.raises(ConfigError, match="newer"):
        PreprocessConfig.from_dict(data)


def test_unknown_key_names_key_and_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "pre.yaml"
    path.write_text("le_windw: [0, 10]\n")
    with pytest.raises(ConfigError) as info:
        load_preprocess_config(path)
    message = str(info.value)
    assert "'le_windw'" in message
    assert "le_window" in message and "downsample_factor" in message


def test_yaml_overrides_preset_and_target_spacing_clears_factor(tmp_path: Path) -> None:
    path = tmp_path / "pre.yaml"
    path.write_text("preset: 8bit\ntarget_spacing_mm: 1.0\nbackground_value: 5\n")
    config = load_preprocess_config(path)
    assert config.preset == "8bit"
    assert config.le_window == (0.0, 255.0)
    assert config.target_spacing_mm == 1.0
    assert config.downsample_factor is None
    assert config.background_value == 5.0
    # the command-line preset wins over the file's
    assert load_preprocess_config(path, preset="paper").le_window == (1800.0, 2900.0)


def test_save_then_load(tmp_path: Path) -> None:
    config = PreprocessConfig(le_window=(10.0, 20.0), otsu_nbins=128)
    save_preprocess_config(config, tmp_path / "c.yaml")
    assert load_preprocess_config(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"downsample_factor": None}, "exactly one"),
        ({"target_spacing_mm": 1.0}, "exactly one"),
        ({"le_window": (5.0, 5.0)}, "low < high"),
        ({"rc_window": (1.0,)}, "two numbers"),
        ({"breast_polarity": "up"}, "bright, dark"),
        ({"otsu_nbins": 0}, "positive integer"),
        ({"downsample_factor": -2.0}, "positive number"),
    ],
)
def test_invalid_values(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        PreprocessConfig(**changes)  # type: ignore[arg-type]


def test_hash_ignores_label_but_not_values() -> None:
    base = PreprocessConfig()
    assert PreprocessConfig(preset="other").config_hash() == base.config_hash()
    assert PreprocessConfig(rc_window=(1700.0, 2500.0)).config_hash() != base.config_hash()


def test_bad_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_preprocess_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_preprocess_config(tmp_path / "missing.yaml")
