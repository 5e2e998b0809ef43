"""A checkpoint holding a randomly initialised LE -> RC generator, for tests and the fuzz run.

It has the keys the checkpoint reader needs (format, version, step, networks, configs, the
training patch size), so ``predict`` and ``export`` load it like a trained model; its images
mean nothing.
"""

from __future__ import annotations

from pathlib import Path

from cemsynth.models.config import ModelConfig
from cemsynth.preprocess.config import PreprocessConfig, get_preset
from cemsynth.vocabulary import PATCH_SIZE

TINY_MODEL = ModelConfig(gen_width=4, gen_residual_blocks=1, disc_width=4)
"""A generator small enough for a whole phantom image in well under a second on a CPU."""


def random_checkpoint(
    path: Path,
    model: ModelConfig = TINY_MODEL,
    preprocess: PreprocessConfig | None = None,
    step: int = 4500,
    seed: int = 0,
    patch_size: int | None = PATCH_SIZE,
) -> Path:
    """Write a checkpoint of a seeded random generator to ``path`` (preprocessing: the
    ``phantom`` preset unless given; ``train_config.patch_size``: ``patch_size``, None for
    no training settings at all); returns ``path``."""
    import torch

    from cemsynth.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from cemsynth.models.generator import build_generator

    torch.manual_seed(seed)
    generator = build_generator(model)
    config = preprocess if preprocess is not None else get_preset("phantom")
    data = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "step": step,
        "networks": {"g_le_to_rc": generator.state_dict()},
        "model_config": model.to_dict(),
        "preprocess_config": config.to_dict(),
        "preprocess_config_hash": config.config_hash(),
        "versions": {"cemsynth": "0.1.0"},
    }
    if patch_size is not None:
        data["train_config"] = {"patch_size": patch_size}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path
