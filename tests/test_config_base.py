"""The one config base: every settings class reads, writes, refuses and overrides alike."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from cemsynth import cli
from cemsynth.config_files import ConfigFile
from cemsynth.data.splits import SplitConfig
from cemsynth.demo import DEMO_COHORT, DemoSettings
from cemsynth.errors import ConfigError
from cemsynth.evaluation.config import EvaluationConfig
from cemsynth.inference.config import RuntimeConfig, SlidingWindowConfig
from cemsynth.models.config import ModelConfig
from cemsynth.phantom.config import CohortConfig, PhantomConfig
from cemsynth.preprocess.config import PreprocessConfig, load_preprocess_config
from cemsynth.reference import ReferenceSettings
from cemsynth.training.config import TrainConfig, load_train_config

# Every config class with the values a round trip changes from the defaults (tuples included,
# which YAML reads back as lists).
CHANGED: dict[type[ConfigFile], dict[str, Any]] = {
    PreprocessConfig: {"anti_alias": True, "le_window": (10.0, 20.0), "preset": "8bit"},
    ModelConfig: {"gen_width": 32, "generator": "unet"},
    TrainConfig: {"batch_size": 8, "model": ModelConfig(gen_width=8), "seed": 3},
    EvaluationConfig: {"halo_band_mm": (5.0, 15.0), "bootstrap_samples": 10, "flat_value": 2.0},
    PhantomConfig: {
        "halo_share": 0.25,
        "glandular_fraction": ((0.01, 0.02), (0.02, 0.03), (0.03, 0.04), (0.04, 0.05)),
        "extra_notes": {"why": "a test"},
    },
    CohortConfig: {"patients": 3, "size": "small", "pixel_mm": 0.2},
    SplitConfig: {"val_fraction": 0.25, "seed": 4},
    SlidingWindowConfig: {"stride": 32, "blend": "mean", "window": 64},
    RuntimeConfig: {"device": "cpu", "threads": 2, "channels_last": False},
    DemoSettings: {"patients": 5, "minutes": None, "lpips": False},
    ReferenceSettings: {"curve_minutes": (1.0, 2.5), "seed": 7},
}
CLASSES = list(CHANGED)


def _all_subclasses(base: type) -> set[type]:
    found: set[type] = set()
    for sub in base.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_config_class_is_covered_here() -> None:
    # a new config class must join CHANGED (and so every test below)
    assert {c for c in _all_subclasses(ConfigFile) if c.__module__.startswith("cemsynth.")} == set(
        CLASSES
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_yaml_round_trip_is_equal(tmp_path: Path, cls: type[ConfigFile]) -> None:
    config = cls().with_overrides(**CHANGED[cls])
    assert config != cls()
    path = tmp_path / "config.yaml"
    config.save(path)
    assert cls.load(path) == config
    assert cls.from_dict(config.to_dict()) == config
    assert config.to_dict()["version"] == cls.VERSION


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_newer_version_file_is_refused_in_one_line(tmp_path: Path, cls: type[ConfigFile]) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("version: 99\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        cls.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "version 99 is newer than this cemsynth supports" in message
    assert "\n" not in message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unknown_key_is_refused_naming_it_and_the_file(
    tmp_path: Path, cls: type[ConfigFile]
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("no_such_key: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        cls.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: unknown {cls.KIND} config key 'no_such_key'"), message
    assert f"valid keys: version, {cls.field_names()[0]}" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match=r"unknown .* key 'no_such_key'"):
        cls.from_dict({"no_such_key": 1})


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_overrides_ignore_none_and_refuse_unknown_names(cls: type[ConfigFile]) -> None:
    config = cls()
    names = cls.field_names()
    assert config.with_overrides(**dict.fromkeys(names)) == config
    name, value = next(iter(CHANGED[cls].items()))
    assert getattr(config.with_overrides(**{name: value}), name) == value
    with pytest.raises(ConfigError) as info:
        config.with_overrides(no_such_setting=1)
    message = str(info.value)
    assert "'no_such_setting'" in message and f"valid keys: {names[0]}" in message


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unknown_preset_lists_the_valid_ones(cls: type[ConfigFile]) -> None:
    with pytest.raises(ConfigError) as info:
        cls.get_preset("no-such-preset")
    choices = ", ".join(sorted(cls.presets())) or "none"
    assert str(info.value) == (
        f"unknown {cls.KIND} preset 'no-such-preset'; valid presets: {choices}"
    )


def test_presets_are_found_by_name() -> None:
    assert PreprocessConfig.get_preset("8bit").le_window == (0.0, 255.0)
    assert TrainConfig.get_preset("small").model == ModelConfig.get_preset("small")
    assert sorted(TrainConfig.presets()) == ["paper", "small", "unet"]


def test_preprocessing_yaml_with_a_newer_version_is_refused(tmp_path: Path) -> None:
    # it used to load; training files were refused: now both are
    path = tmp_path / "pre.yaml"
    path.write_text("version: 99\npreset: phantom\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"preprocessing config version 99 is newer"):
        load_preprocess_config(path)


def test_nested_model_version_and_values_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model:\n  version: 99\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: model config version 99"):
        load_train_config(path)
    path.write_text("model:\n  gen_width: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: model.gen_width must be"):
        load_train_config(path)


def test_file_preset_and_argument_preset() -> None:
    data = {"preset": "small", "batch_size": 2, "model": {"gen_residual_blocks": 1}}
    config = TrainConfig.from_overrides(data)
    assert (config.preset, config.batch_size) == ("small", 2)
    assert config.model == ModelConfig.get_preset("small").with_overrides(gen_residual_blocks=1)
    assert TrainConfig.from_overrides(data, preset="paper").model.gen_width == 64
    with pytest.raises(ConfigError, match="preset must be a name, got 5"):
        TrainConfig.from_overrides({"preset": 5})


def test_preprocess_overrides_clear_the_other_grid_field() -> None:
    spaced = PreprocessConfig().with_overrides(target_spacing_mm=1.0)
    assert (spaced.target_spacing_mm, spaced.downsample_factor) == (1.0, None)
    factor = PreprocessConfig.get_preset("phantom").with_overrides(downsample_factor=2.0)
    assert (factor.target_spacing_mm, factor.downsample_factor) == (None, 2.0)


def test_preprocess_config_hashes_are_unchanged() -> None:
    # caches and checkpoints store these hashes: the base must not change them
    assert PreprocessConfig().config_hash() == "6e57b813b0754de4"
    assert PreprocessConfig.get_preset("phantom").config_hash() == "467acdc7742080d5"


def test_cli_and_demo_take_the_cohort_defaults_from_its_config() -> None:
    parameters = inspect.signature(cli.phantom).parameters
    cohort = CohortConfig()
    for name in ("patients", "seed", "pixel_mm", "size"):
        assert parameters[name].default == getattr(cohort, name), name
    # the demo's cohort is a CohortConfig with its own size and patient count (60: a test
    # split large enough to measure lesions); its settings default to that config
    assert (DemoSettings().patients, DemoSettings().seed) == (DEMO_COHORT.patients, cohort.seed)
    assert CohortConfig(size="small", patients=60) == DEMO_COHORT


def test_cli_help_texts_hard_code_no_default_number() -> None:
    # defaults in help texts come from the configs (f-strings), never a literal number
    tree = ast.parse(Path(inspect.getfile(cli)).read_text(encoding="utf-8"))
    literal = re.compile(r"default:? \d")
    found = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and literal.search(node.value)
    ]
    assert found == []
