"""The training loop: data, networks, steps, validation, logs and checkpoints.

:func:`run_training` is what ``cemsynth train`` calls. It runs in one process, or in each of
the K processes ``torchrun --nproc_per_node=K -m cemsynth train ...`` starts (DDP: every rank
draws its own patches, gradients are averaged, rank 0 validates and writes every file).

Run folder (``--out``)::

    RUN_DIR/
      config.yaml          the TrainConfig of the (latest) start; --config accepts it
      last.pt              full state every checkpoint_every steps and at the end (--resume)
      best.pt              networks and configs at the lowest validation loss (predict)
      train_log.csv        step, time, speed and the losses
      val_log.csv          step, MAE, SSIM and loss on the validation patches, inside the breast
      tensorboard/         event files (when tensorboard is installed)
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from cemsynth.checkpoint import BEST_NAME, LAST_NAME, checkpoint_info, load_state, read_checkpoint
from cemsynth.devices import resolve_device
from cemsynth.errors import CemsynthError, ConfigError, InputFileError
from cemsynth.io.messages import counted
from cemsynth.losses import ssim_map
from cemsynth.models.cyclegan import CycleGAN, build_cyclegan, count_parameters
from cemsynth.stopping import StopRequest
from cemsynth.training.checkpoint import (
    build_checkpoint,
    capture_rng,
    remove_stale_temporaries,
    restore_rng,
    save_checkpoint,
    weights_fingerprint,
)
from cemsynth.training.config import RUNTIME_FIELDS, TrainConfig, save_train_config
from cemsynth.training.data import (
    TrainingData,
    ValPatches,
    load_training_data,
    seed_global_generators,
    train_rng,
)
from cemsynth.training.distributed import (
    DistInfo,
    destroy_process_group,
    detect_distributed,
    init_process_group,
    rank_device,
)
from cemsynth.training.logs import TENSORBOARD_MISSING, CsvLog, ProgressBar, TensorBoardLog
from cemsynth.training.step import LOSS_NAMES, StepNetworks, TrainStep, make_optimizers

CONFIG_NAME = "config.yaml"
TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"
VAL_COLUMNS = ("step", "val_mae", "val_ssim", "val_loss", "best")


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or cleanly stopped) run left behind; losses from the last log row.

    ``stopped_early``: a signal (Ctrl-C, SIGTERM) stopped it; ``time_limited``: the
    ``time_limit_s`` of :func:`run_training` stopped it before ``max_steps``.
    """

    run_dir: Path
    step: int
    stopped_early: bool
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_val_loss: float | None
    last_losses: dict[str, float]
    last_val: dict[str, float] | None
    seconds: float
    time_limited: bool = False


# --- configuration on resume -------------------------------------------------------------


def saved_train_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig stored in ``RUN_DIR/last.pt`` (what ``--resume`` continues)."""
    path = Path(run_dir) / LAST_NAME
    if not path.is_file():
        raise InputFileError(
            Path(run_dir), f"nothing to resume: no {LAST_NAME} here; drop --resume to start a run"
        )
    data = read_checkpoint(path)
    try:
        return TrainConfig.from_dict(data["train_config"], source=f"{path}: train_config")
    except KeyError:
        raise InputFileError(
            path, "checkpoint lacks its train_config; the file is damaged"
        ) from None


def check_resume_config(requested: TrainConfig, saved: TrainConfig, path: Path) -> None:
    """Refuse to resume with another architecture or other non-runtime settings."""
    model_diff = saved.model.differences(requested.model)
    if model_diff:
        raise ConfigError(
            f"{path} was trained with a different architecture ({'; '.join(model_diff)}: "
            f"checkpoint vs requested); resume without --preset/--config, or train into a "
            "new --out folder"
        )
    other = saved.differences(requested, ignore=RUNTIME_FIELDS | {"model"})
    if other:
        raise ConfigError(
            f"{path} was trained with other settings ({'; '.join(other)}: checkpoint vs "
            f"requested); only {', '.join(sorted(RUNTIME_FIELDS))} may change on --resume"
        )


# --- helpers ------------------------------------------------------------------------------


def _precision_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def _to_device(array: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    if channels_last:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


# --- the trainer -----------------------------------------------------------------------------


class Trainer:
    """One process's part of a run; build with :func:`run_training` unless testing.

    Args:
        cache_root: the cache made by ``cemsynth preprocess`` (with ``splits.json``).
        run_dir: the run folder (created).
        config: the settings (on resume: checked against the checkpoint's).
        resume: continue ``RUN_DIR/last.pt``.
        info: this process's DDP rank and world size.
        device: where to train.
        progress: show a progress bar (rank 0).
        console: a rich Console for messages and the bar (default: stderr).
    """

    def __init__(
        self,
        cache_root: Path,
        run_dir: Path,
        config: TrainConfig,
        resume: bool,
        info: DistInfo,
        device: torch.device,
        progress: bool,
        console: Any = None,
    ) -> None:
        self.cache_root = Path(cache_root)
        self.run_dir = Path(run_dir)
        self.config = config
        self.info = info
        self.device = device
        self.progress = progress and info.is_main
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.console = console
        if config.batch_size % info.world_size != 0:
            raise ConfigError(
                f"batch_size {config.batch_size} is not divisible by the {info.world_size} "
                "processes; choose a batch size that is (it is the total over all processes)"
            )
        self.local_batch = config.batch_size // info.world_size

        last = self.run_dir / LAST_NAME
        if not resume and last.exists():
            raise ConfigError(
                f"{self.run_dir} already holds a training run ({LAST_NAME}); add --resume to "
                "continue it, or choose another --out folder"
            )
        if resume and not last.is_file():
            raise InputFileError(
                self.run_dir, f"nothing to resume: no {LAST_NAME} here; drop --resume to start"
            )

        self.data: TrainingData = load_training_data(
            self.cache_root,
            patch_size=config.patch_size,
            padding=config.padding,
            flip_lr=config.flip_lr,
            flip_ud=config.flip_ud,
            val_patches=config.val_patches,
            seed=config.seed,
            sampling=config.sampling,
            sampling_boost=config.sampling_boost,
        )
        self.sampler_rng = train_rng(config.seed, info.rank)
        seed_global_generators(config.seed, info.rank)

        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.nets: CycleGAN = build_cyclegan(config.model).to(device)
        if config.channels_last:
            self.nets.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.opt_g, self.opt_d = make_optimizers(
            self.nets,
            lr_generator=config.lr_generator,
            lr_discriminator=config.lr_discriminator,
            betas=(config.adam_beta1, config.adam_beta2),
        )
        # the weight average of g_le_to_rc (ema_decay > 0); every rank keeps the same one
        self.ema_generator: nn.Module | None = None
        if config.ema_decay > 0:
            self.ema_generator = copy.deepcopy(self.nets.g_le_to_rc).eval().requires_grad_(False)
        self.step = 0
        self.best_val_loss: float | None = None
        self.best_step: int | None = None
        self.last_val: dict[str, float] | None = None
        self.elapsed_before = 0.0  # seconds spent by earlier starts of this run
        self._started = time.perf_counter()
        if resume:
            self._resume(last)

        self.autocast_dtype = _precision_dtype(config.precision, device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not config.deterministic
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.train_step = TrainStep(
            self.nets,
            self._step_networks(),
            self.opt_g,
            self.opt_d,
            config.loss_weights(),
            autocast_dtype=self.autocast_dtype,
            device_type=device.type,
            reverse_generator=config.reverse_generator,
            grad_clip_norm=config.grad_clip_norm,
        )

    # --- setup ------------------------------------------------------------------------------

    def _resume(self, path: Path) -> None:
        data = read_checkpoint(path)
        info = checkpoint_info(data, path)
        saved = TrainConfig.from_dict(info.train_config, source=f"{path}: train_config")
        check_resume_config(self.config, saved, path)
        cache_hash = self.data.cache.config_hash
        if info.preprocess_config_hash != cache_hash:
            raise ConfigError(
                f"{self.cache_root} was preprocessed with another config (hash {cache_hash}) "
                f"than the cache this run was trained on (hash {info.preprocess_config_hash}, "
                f"see {path}); resume with the original cache, or train into a new --out folder"
            )
        if "optimizers" not in data or "rng" not in data:
            raise InputFileError(path, "has no optimiser/RNG state (a best.pt?); cannot resume")
        for name in ("g_le_to_rc", "g_rc_to_le", "d_le", "d_rc"):
            load_state(getattr(self.nets, name), data["networks"][name], name, path)
        if self.ema_generator is not None:
            averaged = (data.get("ema") or {}).get("g_le_to_rc")
            if averaged is None:
                raise InputFileError(path, "has no weight average (ema) to resume")
            load_state(self.ema_generator, averaged, "ema g_le_to_rc", path)
        self.opt_g.load_state_dict(data["optimizers"]["generators"])
        self.opt_d.load_state_dict(data["optimizers"]["discriminators"])
        self.step = info.step
        metrics = data.get("metrics") or {}
        self.best_val_loss = metrics.get("best_val_loss")
        self.best_step = metrics.get("best_step")
        self.last_val = metrics.get("last_val")
        self.elapsed_before = float(metrics.get("elapsed_s") or 0.0)
        rng_states: list[dict[str, Any]] = data["rng"]
        if len(rng_states) == self.info.world_size:
            restore_rng(rng_states[self.info.rank], self.sampler_rng)
        else:
            restore_rng(rng_states[0], self.sampler_rng)
            self.sampler_rng = np.random.default_rng(
                np.random.SeedSequence(self.config.seed, spawn_key=(0, self.info.rank, self.step))
            )
            if self.info.is_main:
                self.console.print(
                    f"note: {path} was written by {len(rng_states)} processes and this run has "
                    f"{self.info.world_size}: patches continue from fresh random streams, so "
                    "the run is not bit-for-bit the uninterrupted one",
                    markup=False,
                    highlight=False,
                )

    def _step_networks(self) -> StepNetworks:
        """DDP-wrap and/or compile the networks for the step (plain ones are kept)."""
        nets = self.nets

        def wrap(module: nn.Module) -> Any:
            wrapped: Any = module
            if self.info.enabled:
                from torch.nn.parallel import DistributedDataParallel

                device_ids = [self.device.index] if self.device.type == "cuda" else None
                wrapped = DistributedDataParallel(module, device_ids=device_ids)
            if self.config.compile:
                wrapped = torch.compile(wrapped)
            return wrapped

        def frozen_view(module: nn.Module) -> Any:
            return torch.compile(module) if self.config.compile else module

        return StepNetworks(
            g_le_to_rc=wrap(nets.g_le_to_rc),
            g_rc_to_le=wrap(nets.g_rc_to_le),
            d_le=wrap(nets.d_le),
            d_rc=wrap(nets.d_rc),
            d_le_frozen=frozen_view(nets.d_le),
            d_rc_frozen=frozen_view(nets.d_rc),
        )

    # --- validation -------------------------------------------------------------------------

    @torch.no_grad()
    def update_weight_average(self) -> None:
        """Move the averaged g_le_to_rc towards the current one (after each step)."""
        if self.ema_generator is None:
            return
        decay = min(self.config.ema_decay, (1.0 + self.step) / (10.0 + self.step))
        with torch.no_grad():
            current = self.nets.g_le_to_rc.state_dict()
            for name, value in self.ema_generator.state_dict().items():
                if value.is_floating_point():
                    value.lerp_(current[name], 1.0 - decay)
                else:
                    value.copy_(current[name])

    @torch.no_grad()
    def validate(self, val: ValPatches) -> dict[str, float]:
        """MAE and SSIM of g_le_to_rc(LE) against RC inside the breast, on the fixed patches
        (the weight average of g_le_to_rc when the run keeps one).

        MAE: mean |fake - real| over breast pixels ([-1, 1] units). SSIM: mean local SSIM over
        breast pixels at least 5 pixels from the patch border. ``val_loss`` mixes them as
        the training objective does: ``loss_mae * MAE + loss_ssim * (1 - SSIM)``.
        """
        generator = self.ema_generator or self.nets.g_le_to_rc
        abs_sum = torch.zeros((), dtype=torch.float64)
        abs_count = 0.0
        ssim_sum = torch.zeros((), dtype=torch.float64)
        ssim_count = 0.0
        half = 11 // 2
        for start in range(0, val.le.shape[0], self.local_batch):
            le = val.le[start : start + self.local_batch].to(self.device)
            rc = val.rc[start : start + self.local_batch].to(self.device)
            mask = val.mask[start : start + self.local_batch].to(self.device)
            with self.train_step._autocast():
                fake = generator(le)
            fake = fake.float()
            weights = mask.float()
            abs_sum += ((fake - rc).abs() * weights).sum().double().cpu()
            abs_count += float(weights.sum())
            inner = weights[..., half:-half, half:-half]
            ssim_sum += (ssim_map(fake, rc) * inner).sum().double().cpu()
            ssim_count += float(inner.sum())
        mae = float(abs_sum) / abs_count if abs_count else math.nan
        ssim = float(ssim_sum) / ssim_count if ssim_count else math.nan
        loss = self.config.loss_mae * mae + self.config.loss_ssim * (1.0 - ssim)
        return {"val_mae": mae, "val_ssim": ssim, "val_loss": loss}

    # --- checkpoints ------------------------------------------------------------------------

    def _gather_states(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Every rank's random states and weight fingerprint (a collective: all ranks call it
        at the same step). Different fingerprints mean the DDP replicas diverged: a bug."""
        mine = (capture_rng(self.sampler_rng), weights_fingerprint(self.nets))
        if not self.info.enabled:
            return [mine[0]], [mine[1]]
        gathered: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(gathered, mine)
        rng_states = [item[0] for item in gathered]
        fingerprints = [item[1] for item in gathered]
        if len(set(fingerprints)) != 1:
            raise CemsynthError(
                f"the {self.info.world_size} DDP replicas hold different weights at step "
                f"{self.step}; this is a bug, please report it (last.pt was not updated)"
            )
        return rng_states, fingerprints

    def _checkpoint(
        self, rng_states: list[dict[str, Any]] | None, fingerprints: list[str] | None = None
    ) -> dict[str, Any]:
        data = build_checkpoint(
            step=self.step,
            world_size=self.info.world_size,
            nets=self.nets,
            opt_g=self.opt_g,
            opt_d=self.opt_d,
            rng_states=rng_states or [],
            model_config=self.config.model,
            train_config=self.config.to_dict(),
            preprocess_config=self.data.cache.config,
            cache={
                "path": str(self.cache_root.absolute()),
                "config_hash": self.data.cache.config_hash,
                "train_entries": len(self.data.train_keys),
                "val_entries": len(self.data.val_keys),
            },
            metrics={
                "best_val_loss": self.best_val_loss,
                "best_step": self.best_step,
                "last_val": self.last_val,
                "elapsed_s": self._elapsed(),
            },
            replica_sha256=fingerprints or [weights_fingerprint(self.nets)],
            ema_generator=self.ema_generator,
        )
        if rng_states is None:  # best.pt: for inference, no optimiser or RNG state
            del data["optimizers"], data["rng"]
        return data

    # --- the loop -------------------------------------------------------------------------

    def fit(self, time_limit_s: float | None = None) -> TrainResult:
        """Train from the current step to ``max_steps`` (or until a clean Ctrl-C stop).

        ``time_limit_s``: wall-clock seconds of this call after which the step in progress is
        the last one (validated and checkpointed like the final step); None: no limit.
        Single-process runs only: DDP ranks would have to agree on the step to stop at.
        """
        config = self.config
        if time_limit_s is not None and self.info.enabled:
            raise ConfigError("a training time limit needs a single-process run (not torchrun)")
        start_time = self._started = time.perf_counter()
        main = self.info.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)  # left by a kill during a checkpoint write
            save_train_config(config, self.run_dir / CONFIG_NAME)
            self._describe()
        keep = self.step if self.step > 0 else None
        train_log = (
            CsvLog(
                self.run_dir / TRAIN_LOG,
                ["step", "elapsed_s", "steps_per_s", *LOSS_NAMES],
                keep_through_step=keep if keep is not None else -1,
            )
            if main
            else None
        )
        val_log = (
            CsvLog(self.run_dir / VAL_LOG, VAL_COLUMNS, keep if keep is not None else -1)
            if main
            else None
        )
        board = (
            TensorBoardLog(self.run_dir / "tensorboard", purge_step=self.step + 1)
            if main and config.tensorboard
            else None
        )
        if board is not None and not board.available:
            self.console.print(TENSORBOARD_MISSING, markup=False, highlight=False)
        if main and self.step >= config.max_steps:
            self.console.print(
                f"{self.run_dir} is at step {self.step} already (max_steps {config.max_steps}); "
                "pass a larger --max-steps to train further",
                markup=False,
                highlight=False,
            )

        sums = torch.zeros(len(LOSS_NAMES), dtype=torch.float32, device=self.device)
        steps_in_row = 0
        row_start = time.perf_counter()
        last_losses: dict[str, float] = {}
        stop = StopRequest()
        stopped = False
        out_of_time = False
        try:
            with (
                ProgressBar(self.progress, config.max_steps, self.step, self.console) as bar,
                stop.installed(not self.info.enabled),
            ):
                while self.step < config.max_steps:
                    batch = self.data.sampler.sample(self.local_batch, self.sampler_rng)
                    le = _to_device(batch.le, self.device, config.channels_last)
                    rc = _to_device(batch.rc, self.device, config.channels_last)
                    losses = self.train_step(le, rc)
                    self.step += 1
                    self.update_weight_average()
                    sums += torch.stack([losses[name] for name in LOSS_NAMES])
                    steps_in_row += 1
                    bar.advance()
                    stopping = stop.requested  # read once: the signal may come at any time
                    out_of_time = (
                        time_limit_s is not None
                        and self.step < config.max_steps
                        and time.perf_counter() - start_time >= time_limit_s
                    )
                    final = self.step == config.max_steps or stopping or out_of_time
                    if self.step % config.log_every == 0 or final:
                        means = sums / steps_in_row
                        if self.info.enabled:
                            dist.all_reduce(means)
                            means /= self.info.world_size
                        seconds = time.perf_counter() - row_start
                        speed = steps_in_row / seconds if seconds > 0 else math.nan
                        last_losses = dict(zip(LOSS_NAMES, means.tolist(), strict=True))
                        if train_log is not None:
                            train_log.write(
                                {
                                    "step": self.step,
                                    "elapsed_s": self._elapsed(),
                                    "steps_per_s": speed,
                                    **last_losses,
                                }
                            )
                        if board is not None:
                            board.scalars("train", last_losses, self.step)
                            board.scalars("speed", {"steps_per_s": speed}, self.step)
                        bar.show(
                            last_losses["g_total"],
                            last_losses["d_le"],
                            last_losses["d_rc"],
                            speed,
                        )
                        sums.zero_()
                        steps_in_row = 0
                        row_start = time.perf_counter()
                    if self.step % config.val_every == 0 or final:
                        self._validate_and_keep_best(val_log, board, bar)
                    if self.step % config.checkpoint_every == 0 or final:
                        rng_states, fingerprints = self._gather_states()
                        if main:
                            save_checkpoint(
                                self._checkpoint(rng_states, fingerprints),
                                self.run_dir / LAST_NAME,
                            )
                    if stopping:
                        stopped = True
                        bar.print(
                            f"stopped at step {self.step}; {LAST_NAME} written; "
                            "continue with --resume"
                        )
                        break
                    if out_of_time:
                        bar.print(
                            f"time limit of {time_limit_s:.0f} s reached at step {self.step}; "
                            f"{LAST_NAME} written"
                        )
                        break
        except torch.OutOfMemoryError:
            raise CemsynthError(
                f"out of {self.device.type.upper()} memory at batch {config.batch_size} "
                f"({self.local_batch} per process) with the {config.preset} preset; lower "
                "batch_size in --config, use --precision bf16, or spread the batch over more "
                "GPUs with torchrun"
            ) from None
        finally:
            for log in (train_log, val_log, board):
                if log is not None:
                    log.close()

        best = self.run_dir / BEST_NAME
        return TrainResult(
            run_dir=self.run_dir,
            step=self.step,
            stopped_early=stopped,
            last_checkpoint=self.run_dir / LAST_NAME,
            best_checkpoint=best if best.is_file() else None,
            best_val_loss=self.best_val_loss,
            last_losses=last_losses,
            last_val=self.last_val,
            seconds=time.perf_counter() - start_time,
            time_limited=out_of_time and not stopped,
        )

    def _elapsed(self) -> float:
        """Training seconds of the whole run, over all its starts."""
        return self.elapsed_before + time.perf_counter() - self._started

    def _validate_and_keep_best(
        self, val_log: CsvLog | None, board: TensorBoardLog | None, bar: ProgressBar
    ) -> None:
        if not self.info.is_main or self.data.val is None:
            return
        metrics = self.validate(self.data.val)
        self.last_val = metrics
        improved = math.isfinite(metrics["val_loss"]) and (
            self.best_val_loss is None or metrics["val_loss"] < self.best_val_loss
        )
        if improved:
            self.best_val_loss = metrics["val_loss"]
            self.best_step = self.step
            save_checkpoint(self._checkpoint(None), self.run_dir / BEST_NAME)
        if val_log is not None:
            val_log.write({"step": self.step, **metrics, "best": int(improved)})
        if board is not None:
            board.scalars("val", metrics, self.step)
            board.image("val/le_real_fake", self._val_strip(), self.step)
        bar.print(
            f"step {self.step}: val MAE {metrics['val_mae']:.4f}, SSIM {metrics['val_ssim']:.4f}"
            + (" (best)" if improved else "")
        )

    @torch.no_grad()
    def _val_strip(self) -> torch.Tensor:
        """LE | real RC | synthetic RC of the first validation patch, (1, p, 3p) in [0, 1]."""
        assert self.data.val is not None
        le = self.data.val.le[:1].to(self.device)
        fake = self.nets.g_le_to_rc(le).float().cpu()
        strip = torch.cat([self.data.val.le[0], self.data.val.rc[0], fake[0]], dim=-1)
        return (strip + 1.0) / 2.0

    def _describe(self) -> None:
        c = self.config
        data = self.data
        g = count_parameters(self.nets.g_le_to_rc)
        d = count_parameters(self.nets.d_le)
        precision = "bf16" if self.autocast_dtype is torch.bfloat16 else "fp32"
        val = (
            f"{counted(len(data.val_keys), 'image')} / {counted(data.val_patients, 'patient')} "
            f"({c.val_patches} fixed patches)"
            if data.val is not None
            else "none (no val patients in splits.json: best.pt is not written)"
        )
        if c.reverse_generator or c.loss_adversarial > 0:
            networks = f"generators {g:,} parameters each, discriminators {d:,} each"
        else:
            networks = f"LE -> RC generator {g:,} parameters (supervised: no cycle, no critic)"
        lines = [
            f"training preset {c.preset}: {networks}; {self.device} {precision}, "
            f"{self.info.world_size} process(es), batch {c.batch_size} ({self.local_batch} "
            f"per process), {c.patch_size}^2 patches, {c.sampling} patch centres",
            f"train: {counted(len(data.train_keys), 'image')} / "
            f"{counted(data.train_patients, 'patient')}; val: {val}",
            f"steps {self.step} -> {c.max_steps}; run folder {self.run_dir}",
        ]
        for line in lines:
            self.console.print(line, markup=False, highlight=False)


def run_training(
    cache_root: Path,
    run_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = False,
    console: Any = None,
    time_limit_s: float | None = None,
) -> TrainResult:
    """Train (or resume) a run; in every process of a torchrun launch, or alone.

    Args:
        cache_root: cache made by ``cemsynth preprocess`` (with ``splits.json``).
        run_dir: run folder (``--out``).
        config: settings; on resume they must match the checkpoint's except the runtime
            fields (:data:`~cemsynth.training.config.RUNTIME_FIELDS`).
        resume: continue from ``RUN_DIR/last.pt`` exactly where it stopped.
        progress: show a progress bar on rank 0.
        console: rich Console for messages (default: stderr).
        time_limit_s: stop after the step during which this many wall-clock seconds of
            training have passed (validated and checkpointed as a final step; ``--resume``
            continues to ``max_steps``). Single-process runs only. None: no limit.

    Raises:
        CemsynthError and subclasses (one line each) for problems the user can fix.
    """
    info = detect_distributed()
    device = rank_device(resolve_device(config.device), info)
    created_group = info.enabled and not dist.is_initialized()
    init_process_group(info, device)
    try:
        trainer = Trainer(
            cache_root, run_dir, config, resume, info, device, progress=progress, console=console
        )
        return trainer.fit(time_limit_s=time_limit_s)
    finally:
        if created_group:
            destroy_process_group(info)
