#!/usr/bin/env python3
"""Make this MMAR's tiny 3-D segmentation data set: blobs in noisy CT-like volumes.

    python custom/make_data.py [--out DIR] [--force]

Writes DIR/imagesTr/case_NNN.nii.gz, DIR/labelsTr/case_NNN.nii.gz and a Decathlon-style
DIR/dataset_0.json ({"training": [...], "validation": [...]}, paths relative to DIR).
DIR defaults to <mmar>/data. Everything comes from a fixed numpy seed (nothing is
downloaded) and the files are byte-for-byte the same on every run: a file that already
holds the expected bytes is left alone, so a second run changes nothing.

Each volume is 32^3 voxels of 1.5 x 1.5 x 2.0 mm (the spacing is in the affine, so
Spacingd resamples for real). The image is a smooth intensity ramp (about -60..60 HU)
plus Gaussian noise (sd 25 HU) with one or two ellipsoid blobs of 200..400 HU; the label
is the blob mask (0 = background, 1 = blob).
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from pathlib import Path

import numpy as np

SEED = 20211
N_TRAIN, N_VAL = 16, 4
SHAPE = (32, 32, 32)
SPACING = (1.5, 1.5, 2.0)          # mm per voxel along x, y, z
NOISE_SD = 25.0                    # HU
BLOB_HU = (200.0, 400.0)
BLOB_RADIUS_MM = (5.0, 10.0)


def make_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (image, label) pair: float32 HU values and a uint8 0/1 mask, both SHAPE."""
    grid = np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SPACING)), indexing="ij")
    extent = np.array([n * s for n, s in zip(SHAPE, SPACING)])
    # a smooth offset: a random linear ramp plus one wide bump, within about +-60 HU
    ramp = sum(rng.uniform(-1, 1) * (g / e - 0.5) for g, e in zip(grid, extent)) * 60.0
    centre = rng.uniform(0.2, 0.8, 3) * extent
    bump = 30.0 * np.exp(-sum((g - c) ** 2 for g, c in zip(grid, centre)) / (2 * 15.0 ** 2))
    image = ramp + bump + rng.normal(0.0, NOISE_SD, SHAPE)
    label = np.zeros(SHAPE, dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        radii = rng.uniform(*BLOB_RADIUS_MM, 3)
        # keep the whole blob inside the volume
        c = np.array([rng.uniform(r + 2 * s, e - r - 2 * s) for r, s, e in zip(radii, SPACING, extent)])
        blob = sum(((g - ci) / ri) ** 2 for g, ci, ri in zip(grid, c, radii)) <= 1.0
        image[blob] = rng.uniform(*BLOB_HU) + rng.normal(0.0, NOISE_SD, int(blob.sum()))
        label |= blob
    return image.astype(np.float32), label.astype(np.uint8)


def nifti_bytes(array: np.ndarray) -> bytes:
    """The .nii.gz file of `array` with the MMAR's spacing, gzip header without a time."""
    import nibabel as nib

    affine = np.diag([*SPACING, 1.0])
    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(img.to_bytes())
    return out.getvalue()


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def make(out: Path) -> int:
    """Write the data set under `out`; returns how many files were (re)written."""
    rng = np.random.default_rng(SEED)
    entries = []
    written = 0
    for i in range(N_TRAIN + N_VAL):
        image, label = make_case(rng)
        name = f"case_{i:03d}.nii.gz"
        written += write_if_changed(out / "imagesTr" / name, nifti_bytes(image))
        written += write_if_changed(out / "labelsTr" / name, nifti_bytes(label))
        entries.append({"image": f"imagesTr/{name}", "label": f"labelsTr/{name}"})
    datalist = {
        "description": "automl_cli mmar_monai: synthetic blobs in CT-like noise (custom/make_data.py)",
        "labels": {"0": "background", "1": "blob"},
        "modality": {"0": "CT"},
        "numTraining": N_TRAIN,
        "numValidation": N_VAL,
        "training": entries[:N_TRAIN],
        "validation": entries[N_TRAIN:],
    }
    written += write_if_changed(out / "dataset_0.json", (json.dumps(datalist, indent=2) + "\n").encode())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data",
                        help="data folder (default: <mmar>/data)")
    args = parser.parse_args(argv)
    written = make(args.out)
    total = 2 * (N_TRAIN + N_VAL) + 1
    print(f"{args.out}: {written} of {total} files written"
          + (" (all up to date)" if written == 0 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
