"""Training: the loss falls on a fixed pair, exact resume, checkpoint contents, bad inputs."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cemsynth.errors import CemsynthError, ConfigError, InputFileError
from cemsynth.models import ModelConfig, build_cyclegan
from cemsynth.preprocess.cache import open_cache
from cemsynth.training import (
    LOSS_NAMES,
    StepNetworks,
    TrainStep,
    load_generator,
    make_optimizers,
    read_checkpoint,
    run_training,
)
from cemsynth.training.config import TrainConfig
from cemsynth.training.loop import TRAIN_LOG, VAL_LOG

from .conftest import TINY_MODEL, tiny_config


def test_loss_falls_on_a_fixed_pair(tiny_cache: Path) -> None:
    torch.manual_seed(0)
    pair = open_cache(tiny_cache).load(open_cache(tiny_cache).entries[0].key, mmap=False)
    # one fixed 32 x 32 LE/RC pair from the middle of the breast, twice (flipped)
    le = torch.from_numpy(pair.le[14:46, 10:42].copy())[None, None]
    rc = torch.from_numpy(pair.rc[14:46, 10:42].copy())[None, None]
    le, rc = torch.cat([le, le.flip(-1)]), torch.cat([rc, rc.flip(-1)])
    config = tiny_config(model=ModelConfig(gen_width=8, gen_residual_blocks=1, disc_width=4))
    nets = build_cyclegan(config.model)
    opt_g, opt_d = make_optimizers(nets, 2e-3, 2e-4, (0.5, 0.999))
    step = TrainStep(
        nets, StepNetworks.plain(nets), opt_g, opt_d, config.loss_weights(), None, "cpu"
    )
    history = [step(le, rc) for _ in range(40)]
    assert set(history[0]) == set(LOSS_NAMES)
    first = sum(h["g_paired"].item() for h in history[:3]) / 3
    last = sum(h["g_paired"].item() for h in history[-3:]) / 3
    assert last < 0.6 * first, (first, last)
    assert history[-1]["g_total"] < history[0]["g_total"]


def _state(path: Path) -> dict[str, object]:
    return read_checkpoint(path)


def _assert_same_tensors(a: object, b: object, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_resume_is_bitwise_the_uninterrupted_run(tiny_cache: Path, tmp_path: Path) -> None:
    config = tiny_config(max_steps=6, checkpoint_every=3, val_every=3)
    straight = run_training(tiny_cache, tmp_path / "straight", config)
    assert straight.step == 6
    first = run_training(tiny_cache, tmp_path / "split", replace(config, max_steps=3))
    assert first.step == 3
    resumed = run_training(tiny_cache, tmp_path / "split", config, resume=True)
    assert resumed.step == 6

    a, b = _state(tmp_path / "straight" / "last.pt"), _state(tmp_path / "split" / "last.pt")
    for key in ("networks", "optimizers", "rng", "step", "replica_sha256"):
        _assert_same_tensors(a[key], b[key], key)
    assert resumed.last_losses == straight.last_losses
    assert resumed.best_val_loss == straight.best_val_loss
    # the logs hold each step once, with the same losses
    rows = {
        name: list(csv.DictReader((tmp_path / name / TRAIN_LOG).open()))
        for name in ("straight", "split")
    }
    assert [r["step"] for r in rows["split"]] == [str(s) for s in range(1, 7)]
    for x, y in zip(rows["straight"], rows["split"], strict=True):
        assert [x[k] for k in LOSS_NAMES] == [y[k] for k in LOSS_NAMES]
    val_rows = list(csv.DictReader((tmp_path / "split" / VAL_LOG).open()))
    assert [r["step"] for r in val_rows] == ["3", "6"]


def test_checkpoint_describes_itself_and_load_generator(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_training(tiny_cache, run, tiny_config())
    data = read_checkpoint(run / "last.pt")
    assert data["format"] == "cemsynth-checkpoint" and data["format_version"] == 1
    assert data["step"] == 4 and data["world_size"] == 1
    assert set(data["networks"]) == {"g_le_to_rc", "g_rc_to_le", "d_le", "d_rc"}
    assert set(data["optimizers"]) == {"generators", "discriminators"}
    assert set(data["rng"][0]) == {"python", "numpy", "torch", "torch_cuda", "sampler"}
    assert ModelConfig.from_dict(data["model_config"]) == TINY_MODEL
    cache = open_cache(tiny_cache)
    assert data["preprocess_config_hash"] == cache.config_hash
    assert {"cemsynth", "torch", "numpy", "python"} <= set(data["versions"])
    json.dumps({k: data[k] for k in ("model_config", "train_config", "preprocess_config")})

    # best.pt: networks and configs for inference, no optimiser or RNG state
    assert result.best_checkpoint == run / "best.pt"
    best = read_checkpoint(run / "best.pt")
    assert "optimizers" not in best and "rng" not in best

    loaded = load_generator(run)  # picks best.pt
    assert loaded.path == run / "best.pt"
    assert loaded.model_config == TINY_MODEL
    assert loaded.preprocess_config == cache.config
    assert loaded.patch_size == tiny_config().patch_size
    assert not loaded.generator.training
    last_generator = load_generator(run / "last.pt").generator
    x = torch.rand(1, 1, 30, 22) * 2 - 1
    with torch.no_grad():
        y = last_generator(x)
    reference = build_cyclegan(TINY_MODEL).g_le_to_rc
    reference.load_state_dict(data["networks"]["g_le_to_rc"])
    with torch.no_grad():
        assert torch.equal(y, reference.eval()(x))

    assert (run / "config.yaml").is_file()
    if (run / "tensorboard").is_dir():  # when tensorboard is installed
        assert any((run / "tensorboard").iterdir())


# --- bad input --------------------------------------------------------------------------


def test_missing_cache(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"no such cache folder.*cemsynth preprocess"):
        run_training(tmp_path / "nowhere", tmp_path / "run", tiny_config())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match=r"not a cemsynth cache \(no index.json\)"):
        run_training(tmp_path / "empty", tmp_path / "run", tiny_config())


def test_cache_without_pairs_or_split(tiny_cache: Path, tmp_path: Path) -> None:
    index = json.loads((tiny_cache / "index.json").read_text())
    empty = tmp_path / "cache"
    empty.mkdir()
    (empty / "index.json").write_text(json.dumps({**index, "entries": []}))
    with pytest.raises(InputFileError, match="holds no preprocessed pairs"):
        run_training(empty, tmp_path / "run", tiny_config())
    (empty / "index.json").write_text(json.dumps(index))
    with pytest.raises(InputFileError, match=r"no patient split.*cemsynth split"):
        run_training(empty, tmp_path / "run", tiny_config())


def test_resume_with_a_cache_of_another_preprocessing_config(
    tiny_cache: Path, other_cache: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run_training(tiny_cache, run, tiny_config(max_steps=2))
    with pytest.raises(ConfigError, match=r"preprocessed with another config.*original cache"):
        run_training(other_cache, run, tiny_config(max_steps=4), resume=True)


def test_resume_with_another_architecture(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_training(tiny_cache, run, tiny_config(max_steps=2))
    wider = tiny_config(max_steps=4, model=replace(TINY_MODEL, gen_width=8))
    with pytest.raises(ConfigError, match=r"different architecture \(gen_width 4 vs 8"):
        run_training(tiny_cache, run, wider, resume=True)
    with pytest.raises(ConfigError, match=r"other settings .*batch_size 2 vs 4"):
        run_training(tiny_cache, run, tiny_config(max_steps=4, batch_size=4), resume=True)
    with pytest.raises(ConfigError, match=r"already holds a training run.*--resume"):
        run_training(tiny_cache, run, tiny_config(max_steps=4))


def test_checkpoint_whose_weights_do_not_fit_its_architecture(
    tiny_cache: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run_training(tiny_cache, run, tiny_config(max_steps=2, val_patches=0))
    data = read_checkpoint(run / "last.pt")
    data["model_config"]["gen_residual_blocks"] = 2
    torch.save(data, tmp_path / "edited.pt")
    with pytest.raises(CemsynthError, match="g_le_to_rc weights do not fit the architecture"):
        load_generator(tmp_path / "edited.pt")
    # no validation patches: no best.pt, load_generator falls back to last.pt
    assert not (run / "best.pt").exists()
    assert load_generator(run).model_config == TINY_MODEL


def test_batch_must_split_evenly_over_processes(tiny_cache: Path, tmp_path: Path) -> None:
    from cemsynth.training.distributed import DistInfo
    from cemsynth.training.loop import Trainer

    with pytest.raises(ConfigError, match="batch_size 3 is not divisible by the 2 processes"):
        Trainer(
            tiny_cache,
            tmp_path / "run",
            tiny_config(batch_size=3),
            resume=False,
            info=DistInfo(rank=0, world_size=2),
            device=torch.device("cpu"),
            progress=False,
        )


def test_sigterm_finishes_the_step_writes_last_and_stops(tiny_cache: Path, tmp_path: Path) -> None:
    import os
    import signal
    import threading
    import time

    run = tmp_path / "run"

    def stop_when_training() -> None:
        log = run / TRAIN_LOG
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.is_file() and len(log.read_text().splitlines()) >= 3:  # header + 2 steps
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=stop_when_training)
    watcher.start()
    result = run_training(tiny_cache, run, tiny_config(max_steps=10_000, checkpoint_every=10_000))
    watcher.join()
    assert result.stopped_early and 2 <= result.step < 10_000
    assert read_checkpoint(run / "last.pt")["step"] == result.step
    resumed = run_training(tiny_cache, run, tiny_config(max_steps=result.step + 1), resume=True)
    assert resumed.step == result.step + 1 and not resumed.stopped_early


def test_time_limit_stops_after_the_step_in_progress(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = tiny_config(max_steps=10_000, val_every=10_000, checkpoint_every=10_000)
    result = run_training(tiny_cache, run, config, time_limit_s=0.0)
    # a zero budget still finishes one step, then validates and checkpoints it as the last
    assert result.time_limited and not result.stopped_early and result.step == 1
    assert read_checkpoint(run / "last.pt")["step"] == 1
    assert [row["step"] for row in csv.DictReader((run / VAL_LOG).open())] == ["1"]
    resumed = run_training(tiny_cache, run, replace(config, max_steps=3), resume=True)
    assert resumed.step == 3 and not resumed.time_limited


def test_time_limit_longer_than_the_run_changes_nothing(tiny_cache: Path, tmp_path: Path) -> None:
    result = run_training(tiny_cache, tmp_path / "run", tiny_config(), time_limit_s=3600.0)
    assert result.step == 4 and not result.time_limited


def test_bf16_autocast_and_channels_last_on_cpu(tiny_cache: Path, tmp_path: Path) -> None:
    config = tiny_config(max_steps=2, precision="bf16", channels_last=True, val_patches=2)
    result = run_training(tiny_cache, tmp_path / "run", config)
    assert result.step == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_losses.values())
    # the weights stay float32: autocast changes the arithmetic, not the parameters
    data = read_checkpoint(tmp_path / "run" / "last.pt")
    assert all(t.dtype == torch.float32 for t in data["networks"]["g_le_to_rc"].values())


# --- the weight average (ema_decay) ----------------------------------------------------------


def test_no_weight_average_by_default(tiny_cache: Path, tmp_path: Path) -> None:
    run_training(tiny_cache, tmp_path / "run", tiny_config(max_steps=1))
    assert "ema" not in read_checkpoint(tmp_path / "run" / "last.pt")


def test_weight_average_after_two_steps_by_hand(tiny_cache: Path, tmp_path: Path) -> None:
    """ema_1 = d1 init + (1 - d1) w1, ema_2 = d2 ema_1 + (1 - d2) w2 with d_t = (1+t)/(10+t)
    (below ema_decay 0.99 this early), from the saved weights of a 1-step and 2-step run."""
    config = tiny_config(max_steps=2, ema_decay=0.99, val_every=1, checkpoint_every=1)
    torch.manual_seed(config.seed)  # the trainer seeds the same way before building
    init = build_cyclegan(config.model).g_le_to_rc.state_dict()
    run_training(tiny_cache, tmp_path / "one", replace(config, max_steps=1))
    run_training(tiny_cache, tmp_path / "two", config)
    w1 = read_checkpoint(tmp_path / "one" / "last.pt")["networks"]["g_le_to_rc"]
    two = read_checkpoint(tmp_path / "two" / "last.pt")
    w2, ema = two["networks"]["g_le_to_rc"], two["ema"]["g_le_to_rc"]
    d1, d2 = 2 / 11, 3 / 12
    for name, value in ema.items():
        expected = d2 * (d1 * init[name] + (1 - d1) * w1[name]) + (1 - d2) * w2[name]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(ema["encode.1.weight"], w2["encode.1.weight"])


def test_weight_average_is_what_validation_and_inference_use(
    tiny_cache: Path, tmp_path: Path
) -> None:
    from cemsynth.inference.backends import TorchWindowModel, load_model
    from cemsynth.inference.config import RuntimeConfig

    run = tmp_path / "run"
    run_training(tiny_cache, run, tiny_config(ema_decay=0.9))
    data = read_checkpoint(run / "best.pt")
    assert "ema" in data and "optimizers" not in data
    predicted = load_model(run, RuntimeConfig(device="cpu", backend="torch")).network
    assert isinstance(predicted, TorchWindowModel)
    for loaded in (load_generator(run / "best.pt").generator, predicted.network):
        for name, value in loaded.state_dict().items():
            assert torch.equal(value, data["ema"]["g_le_to_rc"][name]), name


def test_resume_with_weight_average_is_bitwise(tiny_cache: Path, tmp_path: Path) -> None:
    config = tiny_config(max_steps=4, ema_decay=0.9, checkpoint_every=2, val_every=2)
    run_training(tiny_cache, tmp_path / "straight", config)
    run_training(tiny_cache, tmp_path / "split", replace(config, max_steps=2))
    run_training(tiny_cache, tmp_path / "split", config, resume=True)
    a = _state(tmp_path / "straight" / "last.pt")
    b = _state(tmp_path / "split" / "last.pt")
    for key in ("networks", "ema", "optimizers"):
        _assert_same_tensors(a[key], b[key], key)


def test_resume_needs_the_same_weight_average_setting(tiny_cache: Path, tmp_path: Path) -> None:
    run_training(tiny_cache, tmp_path / "run", tiny_config(max_steps=1))
    with pytest.raises(ConfigError, match="ema_decay"):
        run_training(
            tiny_cache, tmp_path / "run", tiny_config(max_steps=2, ema_decay=0.9), resume=True
        )


def test_supervised_step_trains_only_the_le_to_rc_generator(tiny_cache: Path) -> None:
    """reverse_generator off and adversarial weight 0 (the unet preset): one network is
    updated; the reverse generator and both discriminators are not run, nor changed."""
    torch.manual_seed(0)
    config = tiny_config(
        reverse_generator=False, loss_adversarial=0.0, loss_cycle=0.0, loss_identity=0.0,
        loss_paired=1.0, loss_mae=1.0, loss_ssim=0.0, grad_clip_norm=0.5,
    )  # fmt: skip
    nets = build_cyclegan(config.model)
    before = {name: p.detach().clone() for name, p in nets.named_parameters()}
    opt_g, opt_d = make_optimizers(nets, 1e-3, 1e-3, (0.9, 0.999))
    step = TrainStep(nets, StepNetworks.plain(nets), opt_g, opt_d, config.loss_weights(), None,
                     "cpu", reverse_generator=False, grad_clip_norm=0.5)  # fmt: skip
    le, rc = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = (nets.g_le_to_rc(le) - rc).abs().mean()
    losses = step(le, rc)
    assert losses["g_paired"] == pytest.approx(expected.item(), rel=1e-5)
    for name in ("g_adversarial", "g_cycle", "g_identity", "d_le", "d_rc"):
        assert losses[name].item() == 0.0
    for name, value in nets.named_parameters():
        changed = not torch.equal(before[name], value)
        assert changed is name.startswith("g_le_to_rc."), name


def test_reverse_generator_off_needs_no_cycle() -> None:
    with pytest.raises(ConfigError, match="needs loss_cycle 0"):
        tiny_config(reverse_generator=False, loss_cycle=1.0)


def test_enhancement_weighted_paired_loss_is_the_weighted_mae() -> None:
    from cemsynth.losses import enhancement_weights

    config = tiny_config(
        reverse_generator=False, loss_adversarial=0.0, loss_cycle=0.0, loss_identity=0.0,
        loss_paired=1.0, loss_mae=1.0, loss_ssim=0.0, loss_enhancement=8.0, enhancement_z=0.5,
    )  # fmt: skip
    nets = build_cyclegan(config.model)
    opt_g, opt_d = make_optimizers(nets, 1e-3, 1e-3, (0.9, 0.999))
    step = TrainStep(nets, StepNetworks.plain(nets), opt_g, opt_d, config.loss_weights(), None,
                     "cpu", reverse_generator=False)  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    le = torch.rand(2, 1, 48, 48, generator=generator) * 2 - 1
    rc = torch.rand(2, 1, 48, 48, generator=generator) * 2 - 1
    weights = enhancement_weights(le, rc, 8.0, 0.5)
    assert weights.max() > 2.0  # the weighting is on, so the check below can fail
    with torch.no_grad():
        expected = (weights * (nets.g_le_to_rc(le) - rc).abs()).mean()
        plain = (nets.g_le_to_rc(le) - rc).abs().mean()
    losses = step(le, rc)
    assert losses["g_paired"] == pytest.approx(expected.item(), rel=1e-5)
    assert losses["g_paired"] != pytest.approx(plain.item(), rel=1e-3)


def test_enhancement_settings_are_checked_and_travel_in_the_config() -> None:
    config = tiny_config(loss_enhancement=8.0, enhancement_z=-0.5)
    assert TrainConfig.from_dict(config.to_dict()) == config
    old = config.to_dict()
    del old["loss_enhancement"], old["enhancement_z"]  # a checkpoint written before them
    assert TrainConfig.from_dict(old).loss_enhancement == 0.0
    with pytest.raises(ConfigError, match="loss_enhancement"):
        tiny_config(loss_enhancement=-1.0)
    with pytest.raises(ConfigError, match="enhancement_z"):
        tiny_config(enhancement_z=float("nan"))
