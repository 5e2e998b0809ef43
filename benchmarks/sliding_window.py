"""Benchmark: cemsynth's dense sliding window against MONAI's inferer, same model, same output.

One full-size phantom LE image (2850 x 2394 at 0.1 mm) is resampled to the 0.4 mm grid
(712 x 598, the paper's factor of four, not cropped) and windowed to [-1, 1]; its breast mask
comes from the preprocessing's Otsu mask. A generator with random weights (torch seed 0) of
each ``--preset`` (``small``, ``paper``) then runs over it, timed in the same process:

- **monai**: ``monai.inferers.sliding_window_inference(roi_size=128, overlap=1 - stride/128,
  mode="constant", sw_batch_size=B)`` with the plain generator, under ``torch.inference_mode``
  (what a MONAI user would write; overlap 0.875 for stride 16);
- **ours, torch, every window**: cemsynth's loop with background skipping off (the engine
  alone: channels-last convolutions, one-op window gathering, analytic count map, one
  single-threaded batch per CPU thread at a time);
- **ours, torch, 1 worker**: windows without breast skipped, one batch at a time on all threads;
- **ours, torch**: cemsynth's default loop (skipping, one single-threaded batch per CPU thread
  at a time), torch backend;
- **ours, onnx**: the same with the ONNX Runtime backend (what ``--backend auto`` picks on a
  CPU when onnxruntime is installed);
- **ours, torch bf16**: bfloat16 autocast. On CPUs without bfloat16 units it is slow, so by
  default it runs on ``--bf16-windows`` windows only and the total is extrapolated (labelled).

Each timing is the best of ``--repeat`` runs, the methods interleaved (the machine may be
shared: another busy process slows a 2-thread torch run, MONAI's included, much more than two
1-thread workers; ``--threads 1`` compares single-threaded runs, which that barely
affects). It prints wall times, the ratio MONAI / ours, and the max abs difference from MONAI
inside the breast in the [-1, 1] RC domain (x 350 for RC stored units of the phantom window).
``--quick`` uses stride 64 (overlap 0.5) for 16x fewer windows; the window counts of all four
views are printed either way (how much skipping saves depends on the breast's share of the
frame).

``--device cuda`` (``auto`` picks it when a GPU is present) times the same frame on the GPU
instead: MONAI's inferer in fp32 and in bf16 autocast, ours in fp32 and in bf16 (skipping
background windows, channels-last, ``--gpu-batch-size`` windows per call), each after a
warm-up run and with the GPU synchronised, as milliseconds per image. It also prints the FLOP
floor of our bf16 run: the windows it evaluates x the generator's GFLOP per 128 x 128 window
(counted with torch's FlopCounterMode; 24.4 for ``paper``) over the bf16 throughput of the
generator's dominant convolution (3 x 3, 256 channels on 32 x 32, measured here), and the
fraction of that floor the run reaches.

    .venv/bin/python benchmarks/sliding_window.py --preset small
    .venv/bin/python benchmarks/sliding_window.py --preset paper --quick
    .venv/bin/python benchmarks/sliding_window.py --preset paper --device cuda
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cemsynth.devices import resolve_device
from cemsynth.inference.backends import (
    OnnxWindowModel,
    TorchWindowModel,
    resolve_workers,
)
from cemsynth.inference.config import SlidingWindowConfig
from cemsynth.inference.export import onnx_bytes
from cemsynth.inference.sliding_window import (
    plan_grid,
    select_windows,
    sliding_window_inference,
)
from cemsynth.io.reader import read_image
from cemsynth.models import build_generator, get_model_preset
from cemsynth.preprocess.config import get_preset
from cemsynth.preprocess.intensity import window
from cemsynth.preprocess.mask import breast_mask
from cemsynth.preprocess.resample import resample_bilinear, resample_nearest
from cemsynth.vocabulary import PATCH_SIZE

GRID_SHAPE = (712, 598)  # 2850 x 2394 at 0.1 mm -> 0.4 mm
VIEWS = ("L_CC", "L_MLO", "R_CC", "R_MLO")
RC_HALF_WIDTH = 350.0  # phantom RC window [1700, 2400]: stored units per unit of [-1, 1]
CPU = torch.device("cpu")

WINDOW = PATCH_SIZE
"""Window side in pixels: the paper's patch size, which the benchmarked generators have."""


def phantom_folder(given: Path | None) -> Path:
    """The given phantom folder, or a new full-size one-patient phantom (about 20 s)."""
    if given is not None:
        return given
    from cemsynth.phantom.cohort import write_cohort
    from cemsynth.phantom.config import PhantomConfig

    out = Path(tempfile.mkdtemp(prefix="cemsynth-bench-")) / "phantom"
    write_cohort(
        out, n_patients=1, seed=0, pixel_mm=0.1, size="full", config=PhantomConfig(), workers=1
    )
    return out


def frame_and_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The LE image on the 0.4 mm grid in [-1, 1] (phantom LE window) and its breast mask."""
    le = read_image(path)
    config = get_preset("phantom")
    mask, _ = breast_mask(le.array, source=str(path))
    frame, _ = window(resample_bilinear(le.array, GRID_SHAPE), *config.le_window)
    return frame, resample_nearest(mask, GRID_SHAPE)


def window_counts(phantom: Path, stride: int) -> list[str]:
    lines = []
    for view in VIEWS:
        _, mask = frame_and_mask(phantom / "P0001" / f"{view}_LE.dcm")
        starts = plan_grid(GRID_SHAPE, WINDOW, stride).starts()
        kept = select_windows(mask, starts, WINDOW, SlidingWindowConfig().mask_margin).size
        lines.append(
            f"  {view}: {len(starts)} windows, {kept} touch the breast "
            f"(skipping saves {len(starts) / kept:.2f}x); breast {mask.mean():.0%} of the frame"
        )
    return lines


def _synchronized(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    function: Callable[[], np.ndarray], device: torch.device = CPU
) -> tuple[float, np.ndarray]:
    """Wall seconds of ``function`` and its output; on a GPU with its queue drained before
    and after."""
    _synchronized(device)
    start = time.perf_counter()
    output = function()
    _synchronized(device)
    return time.perf_counter() - start, output


def monai_runner(
    x: torch.Tensor, network: torch.nn.Module, stride: int, batch_size: int, bf16: bool
) -> Callable[[], np.ndarray]:
    """What a MONAI user would write: ``sliding_window_inference(roi_size=128, overlap=1 -
    stride/128, mode="constant")`` over ``x`` ``(1, 1, rows, cols)`` under inference mode
    (and bf16 autocast on ``x``'s device when ``bf16``); returns the float32 image."""
    from monai.inferers import sliding_window_inference as monai_inference

    def run() -> np.ndarray:
        autocast = torch.autocast(x.device.type, torch.bfloat16, enabled=bf16)
        with torch.inference_mode(), autocast:
            out = monai_inference(
                x,
                roi_size=WINDOW,
                sw_batch_size=batch_size,
                predictor=network,
                overlap=1.0 - stride / WINDOW,
                mode="constant",
            )
        assert isinstance(out, torch.Tensor)  # one predictor output, one tensor
        return np.asarray(out[0, 0].float().cpu().numpy())

    return run


def bench_preset(
    preset: str,
    frame: np.ndarray,
    mask: np.ndarray,
    stride: int,
    batch_size: int,
    repeat: int,
    bf16_windows: int,
) -> dict[str, Any]:
    torch.manual_seed(0)
    generator = build_generator(get_model_preset(preset)).eval()
    plain = copy.deepcopy(generator)
    threads = torch.get_num_threads()
    # Mean blending, as MONAI's mode="constant": the outputs must agree, so the comparison is
    # of speed alone (predict's default gaussian weights are timed the same).
    settings = SlidingWindowConfig(
        window=WINDOW, stride=stride, batch_size=batch_size, blend="mean"
    )
    every = replace(settings, skip_background=False)
    workers = resolve_workers(0, torch.device("cpu"))  # what predict uses: one per thread
    torch_model = TorchWindowModel(copy.deepcopy(generator), torch.device("cpu"), "fp32", True)
    setup = time.perf_counter()
    onnx_model = OnnxWindowModel(
        _onnx(generator, preset), torch.device("cpu"), max(threads // workers, 1)
    )
    onnx_setup = time.perf_counter() - setup
    x = torch.from_numpy(frame)[None, None]

    monai = monai_runner(x, plain, stride, batch_size, bf16=False)

    def ours(
        model: Callable[[torch.Tensor], torch.Tensor], config: SlidingWindowConfig, n_workers: int
    ) -> Callable[[], np.ndarray]:
        return lambda: (
            sliding_window_inference(frame, model, config, mask, workers=n_workers).output
        )

    methods: dict[str, Callable[[], np.ndarray]] = {
        "monai": monai,
        "ours, torch, every window": ours(torch_model, every, workers),
        "ours, torch, 1 worker": ours(torch_model, settings, 1),
        "ours, torch": ours(torch_model, settings, workers),
        "ours, onnx": ours(onnx_model, settings, workers),
    }
    seconds: dict[str, float] = {name: float("inf") for name in methods}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for name, function in methods.items():
            elapsed, outputs[name] = timed(function)
            seconds[name] = min(seconds[name], elapsed)
            print(f"    {preset} {name}: {elapsed:.1f} s", flush=True)
    starts = plan_grid(GRID_SHAPE, WINDOW, stride).starts()
    kept = select_windows(mask, starts, WINDOW, settings.mask_margin).size
    result: dict[str, Any] = {
        "preset": preset,
        "stride": stride,
        "batch_size": batch_size,
        "threads": threads,
        "workers": workers,
        "windows": len(starts),
        "windows_evaluated": kept,
        "onnx_export_and_session_s": onnx_setup,
        "seconds": seconds,
        "ratio_vs_monai": {name: seconds["monai"] / s for name, s in seconds.items()},
        "max_abs_diff_in_breast": {
            name: float(np.abs(out - outputs["monai"])[mask].max())
            for name, out in outputs.items()
            if name != "monai"
        },
    }
    result["bf16"] = bench_bf16(
        generator, frame, mask, settings, bf16_windows, kept, outputs, workers
    )
    return result


def _onnx(generator: torch.nn.Module, preset: str) -> bytes:
    from cemsynth.checkpoint import CheckpointInfo, LoadedGenerator

    phantom = get_preset("phantom")
    info = CheckpointInfo(
        path=Path(f"random-{preset}"),
        step=0,
        model_config=get_model_preset(preset),
        preprocess_config=phantom,
        preprocess_config_hash=phantom.config_hash(),
        train_config={},
        versions={},
        patch_size=None,
    )
    return onnx_bytes(LoadedGenerator(copy.deepcopy(generator), info, sha256="0" * 64))


def bench_bf16(
    generator: torch.nn.Module,
    frame: np.ndarray,
    mask: np.ndarray,
    settings: SlidingWindowConfig,
    n_windows: int,
    n_needed: int,
    outputs: dict[str, np.ndarray],
    workers: int,
) -> dict[str, Any]:
    """bf16 autocast: all windows when ``n_windows`` covers them, else a timed sample."""
    model = TorchWindowModel(copy.deepcopy(generator), torch.device("cpu"), "bf16", True)
    if n_windows >= n_needed:
        elapsed, out = timed(
            lambda: sliding_window_inference(frame, model, settings, mask, workers=workers).output
        )
        diff = float(np.abs(out - outputs["ours, torch"])[mask].max())
        return {"seconds": elapsed, "extrapolated": False, "max_abs_diff_vs_fp32": diff}
    starts = torch.from_numpy(plan_grid(GRID_SHAPE, WINDOW, settings.stride).starts()[:n_windows])
    from cemsynth.inference.sliding_window import gather_windows

    batch = gather_windows(torch.from_numpy(frame), starts, WINDOW)
    fp32 = TorchWindowModel(copy.deepcopy(generator), torch.device("cpu"), "fp32", True)
    with torch.inference_mode():
        elapsed, low = timed(lambda: model(batch).numpy())
        high = fp32(batch).numpy()
    per_window = elapsed / n_windows
    return {
        "seconds": per_window * n_needed,
        "extrapolated": True,
        "per_window_s": per_window,
        "sample_windows": n_windows,
        "max_abs_diff_vs_fp32_windows": float(np.abs(low - high).max()),
    }


def gflop_per_window(generator: torch.nn.Module, device: torch.device) -> float:
    """GFLOP of one generator pass over a 1 x 1 x 128 x 128 window (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        generator(torch.zeros(1, 1, WINDOW, WINDOW, device=device))
    return counter.get_total_flops() / 1e9


def conv_throughput_tflops(device: torch.device, dtype: torch.dtype, repeat: int = 20) -> float:
    """Measured TFLOP/s of the generator's dominant convolution: 3 x 3, 256 -> 256 channels
    on 32 x 32 (the residual blocks at the paper width), batch 64, channels-last."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = torch.randn(64, 256, 32, 32, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last
    )
    flops = 2.0 * 64 * 256 * 256 * 9 * 32 * 32
    with torch.inference_mode():
        for _ in range(3):
            conv(x)
        _synchronized(device)
        start = time.perf_counter()
        for _ in range(repeat):
            conv(x)
        _synchronized(device)
    return flops * repeat / (time.perf_counter() - start) / 1e12


def bench_gpu(
    preset: str,
    frame: np.ndarray,
    mask: np.ndarray,
    stride: int,
    batch_size: int,
    repeat: int,
    device: torch.device,
) -> dict[str, Any]:
    """MONAI and ours on ``device`` (fp32 and bf16), milliseconds per image, FLOP floor."""
    torch.manual_seed(0)
    generator = build_generator(get_model_preset(preset)).eval()
    plain = copy.deepcopy(generator).to(device)
    x = torch.from_numpy(frame)[None, None].to(device)

    settings = SlidingWindowConfig(
        window=WINDOW, stride=stride, batch_size=batch_size, blend="mean"
    )

    def ours(precision: str) -> Callable[[], np.ndarray]:
        model = TorchWindowModel(copy.deepcopy(generator), device, precision, True)
        return lambda: sliding_window_inference(frame, model, settings, mask, device=device).output

    methods = {
        "monai fp32": monai_runner(x, plain, stride, batch_size, bf16=False),
        "monai bf16": monai_runner(x, plain, stride, batch_size, bf16=True),
        "ours fp32": ours("fp32"),
        "ours bf16": ours("bf16"),
    }
    seconds = {name: float("inf") for name in methods}
    outputs: dict[str, np.ndarray] = {}
    for function in methods.values():
        timed(function, device)  # warm-up: cuDNN autotuning, allocator
    for _ in range(max(repeat, 3)):
        for name, function in methods.items():
            elapsed, outputs[name] = timed(function, device)
            seconds[name] = min(seconds[name], elapsed)
    starts = plan_grid((frame.shape[0], frame.shape[1]), WINDOW, stride).starts()
    kept = select_windows(mask, starts, WINDOW, settings.mask_margin).size
    gflop = gflop_per_window(plain, device)
    tflops = conv_throughput_tflops(device, torch.bfloat16)
    floor_s = kept * gflop / (tflops * 1e3)
    return {
        "preset": preset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "stride": stride,
        "batch_size": batch_size,
        "windows": len(starts),
        "windows_evaluated": kept,
        "gflop_per_window": gflop,
        "bf16_conv_tflops": tflops,
        "flop_floor_s": floor_s,
        "floor_fraction_ours_bf16": floor_s / seconds["ours bf16"],
        "ms_per_image": {name: 1e3 * s for name, s in seconds.items()},
        "ratio_vs_monai_fp32": {name: seconds["monai fp32"] / s for name, s in seconds.items()},
        "max_abs_diff_in_breast_vs_monai_fp32": {
            name: float(np.abs(out - outputs["monai fp32"])[mask].max())
            for name, out in outputs.items()
            if name != "monai fp32"
        },
    }


def report_gpu(result: dict[str, Any]) -> list[str]:
    lines = [
        f"preset {result['preset']} on {result['device']}: stride {result['stride']}, batch "
        f"{result['batch_size']}; {result['windows']} windows, {result['windows_evaluated']} "
        f"touch the breast (ours evaluates those; MONAI all)"
    ]
    for name, ms in result["ms_per_image"].items():
        ratio = result["ratio_vs_monai_fp32"][name]
        diff = result["max_abs_diff_in_breast_vs_monai_fp32"].get(name)
        diff_text = "" if diff is None else f"; max |diff| in breast vs monai fp32 {diff:.2e}"
        lines.append(f"  {name:12s} {ms:9.1f} ms/image  {ratio:6.2f}x monai fp32{diff_text}")
    lines.append(
        f"  FLOP floor of ours bf16: {result['windows_evaluated']} windows x "
        f"{result['gflop_per_window']:.2f} GFLOP / {result['bf16_conv_tflops']:.1f} TFLOP/s "
        f"(bf16 3x3 conv) = {1e3 * result['flop_floor_s']:.1f} ms; ours bf16 reaches "
        f"{result['floor_fraction_ours_bf16']:.0%} of it"
    )
    return lines


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        f"preset {result['preset']}: stride {result['stride']}, batch {result['batch_size']}, "
        f"{result['threads']} threads, ours with {result['workers']} workers; "
        f"{result['windows']} windows, "
        f"{result['windows_evaluated']} touch the breast"
    ]
    for name, seconds in result["seconds"].items():
        ratio = result["ratio_vs_monai"][name]
        diff = result["max_abs_diff_in_breast"].get(name)
        diff_text = (
            ""
            if diff is None
            else f"; max |diff| in breast {diff:.2e} ({diff * RC_HALF_WIDTH:.3f} RC units)"
        )
        lines.append(f"  {name:28s} {seconds:8.1f} s  {ratio:5.2f}x{diff_text}")
    bf16 = result["bf16"]
    label = "extrapolated from a sample" if bf16["extrapolated"] else "measured"
    ratio = result["seconds"]["monai"] / bf16["seconds"]
    lines.append(f"  {'ours, torch bf16':28s} {bf16['seconds']:8.1f} s  {ratio:5.2f}x ({label})")
    lines.append(
        f"  onnx export + session: {result['onnx_export_and_session_s']:.1f} s (not timed)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("small", "paper", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="stride 64 instead of 16")
    parser.add_argument("--view", choices=VIEWS, default="L_MLO")
    parser.add_argument("--batch-size", type=int, default=SlidingWindowConfig().batch_size)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--bf16-windows", type=int, default=16)
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="cpu: the CPU comparison above; cuda (auto: when present): the GPU one",
    )
    parser.add_argument("--gpu-batch-size", type=int, default=128)
    parser.add_argument("--phantom", type=Path, default=None, help="existing full-size phantom")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    stride = 64 if args.quick else SlidingWindowConfig().stride
    phantom = phantom_folder(args.phantom)
    print(f"phantom {phantom}; 0.4 mm grid {GRID_SHAPE[0]} x {GRID_SHAPE[1]}, stride {stride}")
    for line in window_counts(phantom, stride):
        print(line)
    frame, mask = frame_and_mask(phantom / "P0001" / f"{args.view}_LE.dcm")
    presets = ("small", "paper") if args.preset == "all" else (args.preset,)
    device = resolve_device(args.device)
    results = []
    for preset in presets:
        if device.type == "cuda":
            result = bench_gpu(
                preset, frame, mask, stride, args.gpu_batch_size, args.repeat, device
            )
            lines = report_gpu(result)
        else:
            result = bench_preset(
                preset, frame, mask, stride, args.batch_size, args.repeat, args.bf16_windows
            )
            lines = report(result)
        result["view"] = args.view
        results.append(result)
        print("\n".join(lines), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
