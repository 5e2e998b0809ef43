"""TrainConfig: the paper's defaults, presets, YAML in and out, unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.errors import ConfigError
from cemsynth.models.config import MODEL_PRESETS, ModelConfig
from cemsynth.training.config import (
    TRAIN_PRESETS,
    TrainConfig,
    get_train_preset,
    load_train_config,
    save_train_config,
)


def test_defaults_are_the_papers() -> None:
    config = TrainConfig()
    assert config.model == ModelConfig()
    assert (config.batch_size, config.max_steps, config.patch_size) == (20, 6000, 128)
    assert config.lr_generator == config.lr_discriminator == 2e-4
    assert (config.adam_beta1, config.adam_beta2) == (0.5, 0.999)
    assert (config.loss_mae, config.loss_ssim, config.loss_identity) == (0.5, 0.5, 10.0)
    # the paper's method, untouched by the CPU recipe's options
    assert (config.sampling, config.grad_clip_norm, config.reverse_generator) == (
        "uniform", 0.0, True,
    )  # fmt: skip
    assert config.model.generator == "resnet" and config.ema_decay == 0.0
    assert TRAIN_PRESETS["paper"] == config


def test_small_preset_and_unknown_preset() -> None:
    small = get_train_preset("small")
    assert small.model == MODEL_PRESETS["small"]
    with pytest.raises(
        ConfigError, match="unknown training preset 'tiny'; valid presets: paper, small, unet"
    ):
        get_train_preset("tiny")


def test_yaml_overrides_a_preset_and_nested_model_fields(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("preset: small\nbatch_size: 8\nmodel:\n  gen_residual_blocks: 6\n")
    config = load_train_config(path)
    assert config.preset == "small"
    assert config.batch_size == 8
    assert config.model.gen_residual_blocks == 6
    assert config.model.gen_width == MODEL_PRESETS["small"].gen_width
    # --preset wins over the file's preset key
    assert load_train_config(path, preset="paper").model.gen_width == 64


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = TrainConfig(preset="small", model=ModelConfig(gen_width=8), max_steps=7, seed=3)
    save_train_config(config, tmp_path / "config.yaml")
    assert load_train_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "batchsize: 4\n",
            "unknown training config key 'batchsize'; valid keys: version, preset, model, seed",
        ),
        (
            "model:\n  width: 4\n",
            "unknown model config key 'width'; valid keys: version, channels, generator, unet_",
        ),
        ("precision: fp16\n", "precision must be one of auto, fp32, bf16"),
        ("batch_size: 0\n", "batch_size must be an integer >= 1"),
        ("adam_beta1: 1.5\n", r"adam_beta1 must be in \[0, 1\)"),
        ("loss_cycle: -1\n", "loss_cycle must be a finite number >= 0"),
        ("patch_size: 8\n", "patch_size must be at least 16"),
        ("- 1\n", "expected a mapping"),
        ("version: 9\n", "newer than this cemsynth supports"),
    ],
)
def test_bad_yaml_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_train_config(path)


def test_differences_names_fields() -> None:
    a = TrainConfig()
    b = TrainConfig(batch_size=4, model=ModelConfig(gen_width=32))
    assert a.differences(b) == ["model.gen_width 64 vs 32", "batch_size 20 vs 4"]
