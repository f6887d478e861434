"""Palette of the colour-indexed map."""

from iota2.builders.mosaic import class_colormap


def test_colour_table_colours_and_defaults_for_the_labels_it_leaves_out():
    palette = class_colormap({1: (10, 20, 30), 5: (200, 100, 0)}, [1, 2, 5])
    assert palette[0] == (0, 0, 0, 0)
    assert palette[1] == (10, 20, 30, 255) and palette[5] == (200, 100, 0, 255)
    assert palette[2][3] == 255 and palette[2][:3] not in ((10, 20, 30), (200, 100, 0))


def test_without_colour_table_every_label_gets_a_distinct_colour():
    palette = class_colormap({}, [3, 7, 11])
    assert len({palette[label] for label in (3, 7, 11)}) == 3


def _tile(path, values, transform, **profile):
    import rasterio

    base = {"driver": "GTiff", "width": values.shape[1], "height": values.shape[0], "count": 1,
            "dtype": values.dtype.name, "crs": "EPSG:32631", "transform": transform}
    with rasterio.open(path, "w", **(base | profile)) as dst:
        dst.write(values, 1)
    return path


def test_one_tile_is_copied_and_several_are_merged_with_the_same_result(tmp_path):
    """A single tile in the output layout is copied (no recompression); the result equals a merge's."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from iota2.core.mosaic import mosaic_files

    values = np.random.default_rng(0).integers(0, 9, (300, 520)).astype(np.uint8)
    transform = from_origin(300000, 4900000, 10, 10)
    tiled = _tile(tmp_path / "tiled.tif", values, transform, tiled=True, blockxsize=256, blockysize=256,
                  compress="zstd")
    striped = _tile(tmp_path / "striped.tif", values, transform, compress="lzw")
    palette = {0: (0, 0, 0, 0), 1: (255, 0, 0, 255)}
    for source in (tiled, striped):
        target = tmp_path / f"final_{source.stem}.tif"
        mosaic_files([source], target, "uint8", "ZSTD", colormap=palette)
        with rasterio.open(target) as result:
            assert np.array_equal(result.read(1), values) and result.transform == transform
            assert result.nodata == 0 and result.profile["compress"] == "zstd" and result.profile["tiled"]
            assert result.colormap(1)[1] == (255, 0, 0, 255)
    left = _tile(tmp_path / "left.tif", values[:, :260], transform, tiled=True, blockxsize=256, blockysize=256,
                 compress="zstd")
    right = _tile(tmp_path / "right.tif", values[:, 260:], from_origin(302600, 4900000, 10, 10), tiled=True,
                  blockxsize=256, blockysize=256, compress="zstd")
    mosaic_files([left, right], tmp_path / "merged.tif", "uint8", "ZSTD")
    with rasterio.open(tmp_path / "merged.tif") as merged:
        assert np.array_equal(merged.read(1), values) and merged.transform == transform


def test_mosaic_and_validation_need_no_classification_module():
    import subprocess
    import sys

    code = ("import sys, iota2.builders.mosaic, iota2.builders.validation; "
            "print('iota2.builders.classification' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_label_pixel_type_follows_the_largest_label():
    from iota2.core.raster import label_dtype

    assert label_dtype([1, 255]) == "uint8"
    assert label_dtype([256, 3]) == "uint16"  # the largest, wherever it stands
