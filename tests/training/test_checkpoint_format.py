"""Old and foreign checkpoint files: version 1 written by hand still loads; others fail clearly.

The version 1 fixture below is spelled out key by key (not made by today's saver), so a
change to the saver that stops old files from loading fails this test. It is loaded by
:func:`cemsynth.checkpoint.load_generator`, the one reader that training, ``predict`` and
``export`` share, and through ``predict``'s own entry point (:func:`load_model`) as well.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cemsynth.checkpoint import load_generator, read_checkpoint
from cemsynth.errors import InputFileError
from cemsynth.inference.backends import TorchWindowModel, load_model
from cemsynth.inference.config import RuntimeConfig
from cemsynth.inference.predictor import Predictor
from cemsynth.models import ModelConfig, ResnetGenerator, build_cyclegan
from cemsynth.preprocess import PreprocessConfig
from cemsynth.vocabulary import PATCH_SIZE

V1_MODEL = {
    "version": 1,
    "channels": 1,
    "gen_width": 4,
    "gen_residual_blocks": 1,
    "disc_width": 4,
    "disc_kernel": 4,
    "disc_sigmoid": True,
    "leaky_slope": 0.2,
    "norm_affine": True,
    "init_std": 0.02,
}
V1_PREPROCESS = {
    "version": 1,
    "preset": "paper",
    "downsample_factor": 4.0,
    "target_spacing_mm": None,
    "le_window": [1800.0, 2900.0],
    "rc_window": [1700.0, 2400.0],
    "background_value": 0.0,
    "anti_alias": False,
    "breast_polarity": "bright",
    "otsu_nbins": 256,
    "otsu_subsample": 4,
    "otsu_log": False,
    "fill_holes": True,
    "min_breast_fraction": 0.01,
}


def _version_1_file(path: Path) -> dict[str, torch.Tensor]:
    """Write a format-1 checkpoint by hand; returns the g_le_to_rc weights it holds."""
    torch.manual_seed(5)
    nets = build_cyclegan(ModelConfig.from_dict(V1_MODEL))
    data = {
        "format": "cemsynth-checkpoint",
        "format_version": 1,
        "step": 12,
        "world_size": 1,
        "networks": {
            name: getattr(nets, name).state_dict()
            for name in ("g_le_to_rc", "g_rc_to_le", "d_le", "d_rc")
        },
        "optimizers": {"generators": {}, "discriminators": {}},
        "rng": [
            {
                "python": random.getstate(),
                "numpy": {
                    "bit_generator": "MT19937",
                    "key": [0] * 624,
                    "pos": 624,
                    "has_gauss": 0,
                    "gauss": 0.0,
                },
                "torch": torch.get_rng_state(),
                "torch_cuda": [],
                "sampler": dict(np.random.default_rng(0).bit_generator.state),
            }
        ],
        "model_config": V1_MODEL,
        "train_config": {"version": 1, "preset": "small", "max_steps": 12},
        "preprocess_config": V1_PREPROCESS,
        "preprocess_config_hash": PreprocessConfig.from_dict(V1_PREPROCESS).config_hash(),
        "cache": {"path": "/somewhere/cache", "config_hash": "0" * 16},
        "metrics": {"best_val_loss": None, "best_step": None, "last_val": None},
        "replica_sha256": ["0" * 64],
        "versions": {"cemsynth": "0.1.0", "torch": "2.13.0", "numpy": "2.4.6"},
        "created_utc": "2026-01-01T00:00:00+00:00",
    }
    torch.save(data, path)
    return nets.g_le_to_rc.state_dict()


def test_a_version_1_checkpoint_loads(tmp_path: Path) -> None:
    weights = _version_1_file(tmp_path / "v1.pt")
    loaded = load_generator(tmp_path / "v1.pt")
    assert isinstance(loaded.generator, ResnetGenerator)
    assert loaded.model_config == ModelConfig(gen_width=4, gen_residual_blocks=1, disc_width=4)
    assert loaded.preprocess_config == PreprocessConfig()
    assert loaded.info.step == 12 and loaded.patch_size is None  # v1 files may lack it
    for name, tensor in loaded.generator.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    # the RC -> LE direction is there too
    assert isinstance(
        load_generator(tmp_path / "v1.pt", direction="g_rc_to_le").generator, ResnetGenerator
    )


def test_predict_reads_a_version_1_checkpoint_through_the_same_loader(tmp_path: Path) -> None:
    weights = _version_1_file(tmp_path / "v1.pt")
    model = load_model(tmp_path / "v1.pt", RuntimeConfig(device="cpu", backend="torch"))
    assert isinstance(model.network, TorchWindowModel)
    for name, tensor in model.network.network.state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert model.preprocess_config == PreprocessConfig()
    assert (model.identity.name, model.identity.step) == (f"{tmp_path.name}/v1.pt", 12)
    assert model.identity.trained_with == "0.1.0"
    assert model.identity.sha256 == load_generator(tmp_path / "v1.pt").sha256
    # no patch size recorded: the sliding window falls back to the paper's
    assert Predictor(model).window.window == PATCH_SIZE


def test_a_newer_format_asks_for_an_upgrade(tmp_path: Path) -> None:
    _version_1_file(tmp_path / "v1.pt")
    data = torch.load(tmp_path / "v1.pt", weights_only=True)
    data["format_version"] = 2
    torch.save(data, tmp_path / "v2.pt")
    with pytest.raises(
        InputFileError, match=r"format version 2 was written by a newer cemsynth.*upgrade"
    ):
        read_checkpoint(tmp_path / "v2.pt")


def test_foreign_and_broken_files_fail_with_one_line(tmp_path: Path) -> None:
    torch.save(ResnetGenerator(width=4, residual_blocks=1).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(InputFileError, match="not a cemsynth checkpoint"):
        load_generator(tmp_path / "weights.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip file")
    with pytest.raises(InputFileError, match="not a readable cemsynth checkpoint") as info:
        load_generator(tmp_path / "junk.pt")
    assert "\n" not in str(info.value)
    with pytest.raises(InputFileError, match="checkpoint not found"):
        load_generator(tmp_path / "missing.pt")
    (tmp_path / "run").mkdir()
    with pytest.raises(InputFileError, match=r"no best\.pt or last\.pt here"):
        load_generator(tmp_path / "run")


def test_stale_temporaries_of_killed_checkpoint_writes_are_removed(tmp_path: Path) -> None:
    from cemsynth.training.checkpoint import remove_stale_temporaries  # the writing side

    for name in (".last.pt.a1b2.tmp", ".best.pt.c3d4.tmp", ".other.pt.e5.tmp", "notes.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.e5.tmp", "notes.tmp"]
