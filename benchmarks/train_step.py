"""Benchmark: cycle-GAN training steps per second, ours against a plain fp32 loop.

In one run, on the same networks and the same random 128 x 128 batches:

- **plain**: a straightforward fp32 step written out here (no autocast, no compile, default
  memory format): generator update then discriminator update with the paper's losses;
- **ours**: :class:`cemsynth.training.TrainStep` as ``cemsynth train`` runs it by default on
  this device (CPU: fp32; CUDA: bf16 autocast);
- options, each on top of ours: ``channels_last`` (on GPU and for the small preset on CPU),
  ``compile`` (``--compile``), ``bf16`` autocast on CPU (``--bf16``; slow without
  AVX512-BF16).

Steps alternate between the variants (after one warm-up step each) so that load from other
processes hits them alike. FLOPs per step are counted once with torch's FlopCounterMode on
the meta device. CPU: batch 4, presets small and paper (about 1.5 min on 2 idle cores; the
paper preset gets one timed step per variant there); CUDA: also batch 20 (the paper's).

    .venv/bin/python benchmarks/train_step.py [--rounds 3] [--compile] [--bf16]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch

from cemsynth.losses import (
    LossWeights,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mae_loss,
    mae_ssim_loss,
)
from cemsynth.models import CycleGAN, build_cyclegan, get_model_preset
from cemsynth.training import TrainConfig, TrainStep, make_optimizers
from cemsynth.training.step import StepNetworks

PATCH = 128
WEIGHTS = TrainConfig().loss_weights()


def plain_step(
    nets: CycleGAN,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    le: torch.Tensor,
    rc: torch.Tensor,
    w: LossWeights,
) -> None:
    """The baseline: the same objective written as a plain fp32 loop body."""
    d_params = nets.discriminator_parameters()
    for p in d_params:
        p.requires_grad_(False)
    opt_g.zero_grad()
    fake_rc, fake_le = nets.g_le_to_rc(le), nets.g_rc_to_le(rc)
    cycle_le, cycle_rc = nets.g_rc_to_le(fake_rc), nets.g_le_to_rc(fake_le)
    same_rc, same_le = nets.g_le_to_rc(rc), nets.g_rc_to_le(le)
    mix = {"mae_weight": w.mae, "ssim_weight": w.ssim}
    loss = (
        w.adversarial
        * (lsgan_generator_loss(nets.d_rc(fake_rc)) + lsgan_generator_loss(nets.d_le(fake_le)))
        + w.cycle * (mae_ssim_loss(cycle_le, le, **mix) + mae_ssim_loss(cycle_rc, rc, **mix))
        + w.identity * (mae_loss(same_rc, rc) + mae_loss(same_le, le))
        + w.paired * (mae_ssim_loss(fake_rc, rc, **mix) + mae_ssim_loss(fake_le, le, **mix))
    )
    loss.backward()
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)
    opt_d.zero_grad()
    fake_rc, fake_le = fake_rc.detach(), fake_le.detach()
    d_loss = lsgan_discriminator_loss(nets.d_rc(rc), nets.d_rc(fake_rc))
    d_loss = d_loss + lsgan_discriminator_loss(nets.d_le(le), nets.d_le(fake_le))
    d_loss.backward()
    opt_d.step()


@dataclass
class Variant:
    name: str
    run: Callable[[torch.Tensor, torch.Tensor], object]
    channels_last: bool = False
    seconds: float = 0.0
    steps: int = 0


def step_flops(preset: str, batch: int) -> float:
    """FLOPs of one training step, counted on the meta device (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    nets = build_cyclegan(get_model_preset(preset)).to("meta")
    opt_g, opt_d = make_optimizers(nets, 2e-4, 2e-4, (0.5, 0.999))
    step = TrainStep(nets, StepNetworks.plain(nets), opt_g, opt_d, WEIGHTS, None, "cpu")
    x = torch.empty(batch, 1, PATCH, PATCH, device="meta")
    with FlopCounterMode(display=False) as counter:
        step(x, x)
    return float(counter.get_total_flops())


def bench(
    preset: str,
    batch: int,
    device: torch.device,
    rounds: int,
    channels_last: bool,
    compile_: bool,
    bf16: bool,
    warm_all: bool,
) -> None:
    torch.manual_seed(0)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def make(autocast: torch.dtype | None, channels_last: bool, compiled: bool) -> Variant:
        torch.manual_seed(0)
        nets = build_cyclegan(get_model_preset(preset)).to(device)
        if channels_last:
            nets.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        opt_g, opt_d = make_optimizers(nets, 2e-4, 2e-4, (0.5, 0.999))
        call = StepNetworks.plain(nets)
        if compiled:
            call = StepNetworks(
                **{f.name: torch.compile(getattr(call, f.name)) for f in fields(call)}
            )
        step = TrainStep(nets, call, opt_g, opt_d, WEIGHTS, autocast, device.type)
        name = "ours" + (" +channels_last" if channels_last else "")
        name += " +compile" if compiled else ""
        name += " (bf16)" if autocast is not None else " (fp32)"
        return Variant(name, step, channels_last)

    torch.manual_seed(0)
    base_nets = build_cyclegan(get_model_preset(preset)).to(device)
    base_g, base_d = make_optimizers(base_nets, 2e-4, 2e-4, (0.5, 0.999))
    variants = [
        Variant(
            "plain fp32 loop",
            lambda le, rc: plain_step(base_nets, base_g, base_d, le, rc, WEIGHTS),
        ),
        make(torch.bfloat16 if cuda else None, False, False),
    ]
    if channels_last:
        variants.append(make(torch.bfloat16 if cuda else None, True, False))
    if compile_:
        variants.append(make(torch.bfloat16 if cuda else None, True, True))
    if bf16 and not cuda:
        variants.append(make(torch.bfloat16, False, False))

    generator = torch.Generator().manual_seed(1)
    batches = [
        tuple(
            (torch.rand(batch, 1, PATCH, PATCH, generator=generator) * 2 - 1).to(device)
            for _ in range(2)
        )
        for _ in range(2)
    ]

    def once(variant: Variant) -> float:
        le, rc = batches[variant.steps % 2]
        if variant.channels_last:
            le = le.contiguous(memory_format=torch.channels_last)
            rc = rc.contiguous(memory_format=torch.channels_last)
        sync()
        start = time.perf_counter()
        variant.run(le, rc)
        sync()
        variant.steps += 1
        return time.perf_counter() - start

    # first step: allocation, kernel choice, compilation. A paper step on 2 CPU cores takes
    # ~20 s, so there only the first variant warms up (oneDNN's kernel cache is shared).
    warmed = variants if warm_all else variants[:1]
    warm = {v.name: once(v) for v in warmed}
    for v in variants:
        v.steps = 0
    for _ in range(rounds):
        for v in variants:
            v.seconds += once(v)
    flops = step_flops(preset, batch)
    baseline = variants[0].steps / variants[0].seconds
    print(
        f"\n{preset} preset, batch {batch}, {PATCH}x{PATCH}, {device}"
        f"{'' if cuda else f', {torch.get_num_threads()} threads'}: "
        f"{flops / 1e9:,.0f} GFLOP per step"
    )
    print(f"  {'variant':34s} {'steps/s':>9s} {'s/step':>8s} {'GFLOP/s':>9s} {'vs plain':>9s}")
    for v in variants:
        rate = v.steps / v.seconds
        print(
            f"  {v.name:34s} {rate:9.3f} {1 / rate:8.3f} {flops * rate / 1e9:9.1f} "
            f"{rate / baseline:8.2f}x"
            + (f"   (warm-up step {warm[v.name]:.1f} s)" if v.name in warm else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed steps per variant (small)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast on CPU")
    parser.add_argument("--presets", default="small,paper")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, device {device}")
    for preset in args.presets.split(","):
        cuda = device.type == "cuda"
        # the paper preset takes ~20 s a step on 2 CPU cores: plain and ours, one timed step
        light = preset == "small" or cuda
        rounds = args.rounds if light else 1
        extras = {"compile_": args.compile and light, "bf16": args.bf16 and light}
        bench(preset, 4, device, rounds, light, warm_all=light, **extras)
        if cuda:
            bench(preset, 20, device, max(args.rounds, 10), True, warm_all=True, **extras)


if __name__ == "__main__":
    main()
