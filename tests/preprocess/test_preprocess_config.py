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
    # 8-bit exports are already reduced: no further downsampling (a 256 x 512 CDD-CESM image
    # would otherwise be cached smaller than one 128 x 128 patch)
    assert get_preset("8bit").downsample_factor == 1.0
    assert get_preset("8bit").target_spacing_mm is None
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


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("background_value: abc", "background_value must be a number, got 'abc'"),
        ("background_value: .nan", "background_value must be a number, got nan"),
        ("background_value: true", "background_value must be a number, got True"),
        ("le_window: [low, 2900]", "le_window must be two numbers [low, high], got 'low'"),
        ("rc_window: 1700", "rc_window must be two numbers [low, high], got 1700"),
        ("rc_window: [1, 2, 3]", "rc_window must be two numbers"),
        ("downsample_factor: four", "downsample_factor must be a positive number, got 'four'"),
        ("target_spacing_mm: .inf", "target_spacing_mm must be a positive number"),
        ("anti_alias: 'no'", "anti_alias must be true or false, got 'no'"),
        ("otsu_log: 1", "otsu_log must be true or false, got 1"),
        ("fill_holes: null", "fill_holes must be true or false, got None"),
        ("breast_polarity: [bright]", "breast_polarity must be one of bright, dark"),
        ("otsu_nbins: 2.5", "otsu_nbins must be a positive integer, got 2.5"),
        ("otsu_subsample: '4'", "otsu_subsample must be a positive integer, got '4'"),
        ("min_breast_fraction: abc", "min_breast_fraction must be a number in [0, 1)"),
        ("min_breast_fraction: 1.5", "min_breast_fraction must be in [0, 1)"),
        ("preset: 5", "preset must be a name, got 5"),
    ],
)
def test_every_yaml_field_is_type_checked_with_key_and_file(
    tmp_path: Path, line: str, fragment: str
) -> None:
    path = tmp_path / "preprocess.yaml"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_preprocess_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message, message
    assert "\n" not in message


def test_cli_bad_config_value_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cemsynth.cli import main

    config = tmp_path / "p.yaml"
    config.write_text("background_value: abc\n", encoding="utf-8")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("patient_id,study_uid,laterality,view,le_path,rc_path\n")
    with pytest.raises(SystemExit) as info:
        main(["preprocess", str(manifest), "--out", str(tmp_path / "c"), "--config", str(config)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"cemsynth: error: {config}: background_value must be a number, got 'abc'\n"
