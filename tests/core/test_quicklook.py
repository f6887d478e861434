"""Quicklooks of final maps: a bounded read whatever the map size, the legend's colours, nodata left white."""

from __future__ import annotations

import tracemalloc

import numpy as np
import rasterio
from matplotlib.image import imread
from rasterio.transform import from_origin

from iota2.core.layout import OutputLayout
from iota2.core.legend import class_legend
from iota2.core.mosaic import to_cog
from iota2.core.quicklook import class_quicklook, quicklook_path, ramp_quicklook, read_decimated


def _map(path, values, nodata=0):
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=values.dtype.name, crs="EPSG:32631", transform=from_origin(0, 0, 10, 10), nodata=nodata,
                       tiled=True, blockxsize=256, blockysize=256, compress="zstd") as dst:
        dst.write(values, 1)
    return path


def test_a_large_map_is_read_decimated_with_memory_of_the_picture_only(tmp_path):
    values = np.random.default_rng(0).integers(1, 4, (3000, 2000)).astype(np.uint8)  # 6 MB
    plain = _map(tmp_path / "plain.tif", values)
    cog = tmp_path / "cog.tif"
    to_cog(plain, cog, "ZSTD", "mode")
    for path in (plain, cog):
        tracemalloc.start()
        data, info = read_decimated(path, max_size=500)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert data.shape == (500, 334) and (info["width"], info["height"]) == (2000, 3000)
        assert peak < 1_000_000, peak  # the whole map would take 6 MB
        assert set(np.unique(data.compressed())) <= {1, 2, 3}


def test_class_quicklook_shows_the_legend_colours_and_leaves_nodata_white(tmp_path):
    values = np.zeros((300, 400), np.uint8)
    values[:100] = 1
    values[100:200] = 5
    source = _map(tmp_path / "Classif_Seed_0.tif", values)
    legend = class_legend([1, 5], {1: "cost $5 & up", 5: "water"}, {1: (255, 0, 0), 5: (0, 0, 255)})
    layout = OutputLayout(tmp_path / "out")
    target = quicklook_path(layout, source)
    assert target == tmp_path / "out" / "final" / "quicklooks" / "Classif_Seed_0.png"
    class_quicklook(source, target, legend, title="run 0")
    picture = (imread(target)[..., :3] * 255).round().astype(int)
    colours, counts = np.unique(picture.reshape(-1, 3), axis=0, return_counts=True)
    share = {tuple(c): n / picture[..., 0].size for c, n in zip(colours.tolist(), counts)}
    assert share.get((255, 0, 0), 0) > 0.1 and share.get((0, 0, 255), 0) > 0.1
    assert share.get((255, 255, 255), 0) > 0.2  # nodata third and margins


def test_ramp_quicklook_returns_the_maximum_it_used(tmp_path):
    values = np.arange(200 * 300, dtype=np.uint16).reshape(200, 300) % 37
    source = _map(tmp_path / "PixelsValidity.tif", values)
    assert ramp_quicklook(source, tmp_path / "v.png", 0, None, label="dates") == 36
    assert ramp_quicklook(source, tmp_path / "c.png", 0, 100) == 100
    picture = imread(tmp_path / "v.png")
    assert picture.shape[0] > 200 and len(np.unique(picture.reshape(-1, picture.shape[-1]), axis=0)) > 30
