"""The peer "minimal hand-written script" of the benchmark: read, features, sample, fit, predict, write,
score with numpy, rasterio and scikit-learn, and nothing else (no gap-filling, no chunking, no scheduler).

Usage: python bench/minimal_script.py TILE_FOLDER LEARN.sqlite VAL.sqlite OUT_DIR [--trees 100]
[--per-class 500]. Prints one JSON line: {"seconds": ..., "oa": ..., "pixels": ...}.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyogrio  # noqa: E402
import rasterio  # noqa: E402
from rasterio import features as rio_features  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402

BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


def read_stack(tile_folder: Path) -> tuple[np.ndarray, dict]:
    products = sorted(p for p in tile_folder.iterdir() if p.is_dir())
    with rasterio.open(next(products[0].glob("*_FRE_B2.tif"))) as ref:
        height, width, profile = ref.height, ref.width, ref.profile
    layers = []
    for product in products:
        bands = []
        for band in BANDS:
            with rasterio.open(next(product.glob(f"*_FRE_{band}.tif"))) as src:
                bands.append(src.read(1, out_shape=(height, width), resampling=Resampling.bilinear)
                             .astype(np.float32))
        bands = np.stack(bands)
        red, nir, swir = bands[2], bands[6], bands[8]
        with np.errstate(divide="ignore", invalid="ignore"):
            ndvi = np.nan_to_num((nir - red) / (nir + red) * 1000)
            ndwi = np.nan_to_num((swir - nir) / (swir + nir) * 1000)
        layers.append((bands, ndvi, ndwi, np.sqrt((bands ** 2).sum(axis=0))))
    stack = np.concatenate([b for b, _, _, _ in layers] + [np.stack([x[i] for x in layers]) for i in (1, 2, 3)])
    return stack.reshape(stack.shape[0], -1).T.copy(), profile


def rasterize(path: Path, profile: dict) -> np.ndarray:
    frame = pyogrio.read_dataframe(path)
    return rio_features.rasterize(zip(frame.geometry, frame["code"]), out_shape=(profile["height"],
                                  profile["width"]), transform=profile["transform"], fill=0, dtype="int32").ravel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tile_folder", type=Path)
    parser.add_argument("learn", type=Path)
    parser.add_argument("val", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=500)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    features, profile = read_stack(args.tile_folder)
    learn = rasterize(args.learn, profile)
    rows = []
    for label in np.unique(learn[learn > 0]):
        where = np.flatnonzero(learn == label)
        step = max(1, len(where) // args.per_class)
        rows.append(where[::step][:args.per_class])
    rows = np.concatenate(rows)
    model = RandomForestClassifier(n_estimators=args.trees, max_depth=25, min_samples_leaf=5, n_jobs=threads,
                                   random_state=0).fit(features[rows], learn[rows])
    model.n_jobs = 1
    labels = np.zeros(len(features), np.uint8)
    confidence = np.zeros(len(features), np.uint8)

    def predict(start: int) -> None:
        proba = model.predict_proba(features[start:start + 65536])
        labels[start:start + 65536] = model.classes_[proba.argmax(axis=1)]
        confidence[start:start + 65536] = np.rint(proba.max(axis=1) * 100)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(predict, range(0, len(features), 65536)))
    args.out.mkdir(parents=True, exist_ok=True)
    out_profile = profile | {"count": 2, "dtype": "uint8", "nodata": 0, "compress": "zstd"}
    with rasterio.open(args.out / "classif.tif", "w", **out_profile) as dst:
        dst.write(np.stack([labels, confidence]).reshape(2, profile["height"], profile["width"]))
    val = rasterize(args.val, profile)
    inside = val > 0
    oa = float((labels[inside] == val[inside]).mean())
    print(json.dumps({"seconds": time.perf_counter() - START, "oa": oa, "pixels": int(inside.sum())}))


if __name__ == "__main__":
    main()
