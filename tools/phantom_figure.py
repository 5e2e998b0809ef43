"""Render one phantom patient (LE and RC of all four views) to a PNG for the docs.

Usage: ``python tools/phantom_figure.py OUT.png [--seed 4] [--patient 1]``. Windows are the
paper's (LE 1800-2900, RC 1700-2400).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw

from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.preprocess.config import PreprocessConfig

WINDOWS = {"le_path": PreprocessConfig().le_window, "rc_path": PreprocessConfig().rc_window}
TILE_HEIGHT = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--patient", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = write_cohort(
            Path(folder),
            n_patients=args.patient,
            seed=args.seed,
            pixel_mm=0.1,
            size="small",
            config=PhantomConfig(),
            workers=1,
        )
        rows = [r for r in result.rows if r["patient_id"] == f"P{args.patient:04d}"]
        tiles = []
        for row in rows:
            for key, (low, high) in WINDOWS.items():
                pixels = pydicom.dcmread(Path(folder) / row[key]).pixel_array.astype(float)
                scaled = np.clip((pixels - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)
                tile = Image.fromarray(scaled)
                tile = tile.resize((tile.width * TILE_HEIGHT // tile.height, TILE_HEIGHT))
                label = (
                    f"{row['laterality']} {row['view']} {'LE' if key == 'le_path' else 'RC'}"
                    f"  lesion={row['lesion_kind']} BPE={row['bpe_grade']} "
                    f"halo={row['halo']}"
                )
                ImageDraw.Draw(tile).text((4, TILE_HEIGHT - 14), label, fill=255)
                tiles.append(tile)
    width = tiles[0].width
    sheet = Image.new("L", (4 * width + 30, 2 * TILE_HEIGHT + 10), 40)
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % 4) * (width + 10), (index // 4) * (TILE_HEIGHT + 10)))
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
