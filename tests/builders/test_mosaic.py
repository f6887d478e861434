"""Final maps: palette of the colour-indexed map, mosaics as Cloud Optimized GeoTIFFs, legend, styles and
quicklooks."""

import pytest

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


# ---------------------------------------------------------------------------- COG, legend, styles, quicklooks

def assert_cog(path, blocksize=256, overviews=True):
    """A Cloud Optimized GeoTIFF: tiled, GDAL's ghost area (LAYOUT=COG) right after the header, the first IFD (the
    full-resolution image) before every tile, overviews when the map is larger than a tile. Maps of several bands
    are band-interleaved, without the ghost area: their directories come first (see :func:`assert_band_cog`)."""
    import rasterio

    from iota2.core.stac import is_cog

    with rasterio.open(path) as src:
        if src.count > 1:
            return assert_band_cog(src, blocksize, overviews)
        assert is_cog(src) and src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", path
        assert src.profile["tiled"] and src.block_shapes[0] == (blocksize, blocksize), path
        assert bool(src.overviews(1)) == overviews, (path, src.overviews(1))
        first_tile = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    head = open(path, "rb").read(200)
    assert head[:4] in (b"II*\x00", b"II+\x00"), path
    ifd = int.from_bytes(head[4:8], "little") if head[:4] == b"II*\x00" else int.from_bytes(head[8:16], "little")
    assert b"GDAL_STRUCTURAL_METADATA_SIZE" in head[:64] and ifd < first_tile, (path, ifd, first_tile)


def assert_band_cog(src, blocksize=256, overviews=True):
    """A band-interleaved COG: tiled, the image's IFD right after the header, each overview's IFD before any block,
    the overviews' blocks (smallest first) before the image's, overviews when larger than a tile."""
    from iota2.core.stac import is_cog

    assert is_cog(src) and src.profile["interleave"] == "band", src.name
    assert src.profile["tiled"] and src.block_shapes[0] == (blocksize, blocksize), src.name
    assert bool(src.overviews(1)) == overviews, (src.name, src.overviews(1))
    first_blocks = [min(int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=band, ovr=level))
                        for band in range(1, src.count + 1)) for level in range(len(src.overviews(1)))]
    image_block = min(int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=band)) for band in range(1, src.count + 1))
    assert int(src.get_tag_item("IFD_OFFSET", "TIFF", bidx=1)) in (8, 16), src.name
    assert first_blocks == sorted(first_blocks, reverse=True) and all(block < image_block for block in first_blocks)


def gdal_category_names(path):
    """Category names of band 1 as GDAL reads them (rasterio's own libgdal through ctypes: rasterio has no getter)."""
    import ctypes
    import glob
    import os

    import rasterio

    libs = glob.glob(os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libgdal*.so*"))
    if not libs:
        pytest.skip("rasterio's libgdal is not a separate library here")
    gdal = ctypes.CDLL(libs[0])
    gdal.GDALAllRegister()
    gdal.GDALOpen.restype, gdal.GDALOpen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    gdal.GDALGetRasterBand.restype, gdal.GDALGetRasterBand.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]
    gdal.GDALGetMetadata.restype, gdal.GDALGetMetadata.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
    gdal.GDALGetRasterCategoryNames.restype = ctypes.POINTER(ctypes.c_char_p)
    gdal.GDALGetRasterCategoryNames.argtypes = [ctypes.c_void_p]
    gdal.GDALGetDefaultRAT.restype, gdal.GDALGetDefaultRAT.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    gdal.GDALRATGetRowCount.argtypes = [ctypes.c_void_p]
    gdal.GDALClose.argtypes = [ctypes.c_void_p]
    dataset = gdal.GDALOpen(str(path).encode(), 0)
    try:
        band = gdal.GDALGetRasterBand(dataset, 1)
        gdal.GDALGetMetadata(band, None)  # loads the PAM file (GDAL reads it lazily)
        names = gdal.GDALGetRasterCategoryNames(band)
        result = []
        while names and names[len(result)] is not None:
            result.append(names[len(result)].decode())
        rat = gdal.GDALGetDefaultRAT(band)
        return result, (gdal.GDALRATGetRowCount(rat) if rat else 0)
    finally:
        gdal.GDALClose(dataset)


NAMES = {1: 'maize & "sweet" <corn>', 5: "water", 7: "forest"}


def _run_tiles(root, run=0, size=(600, 300)):
    """Label, confidence and validity maps of two side-by-side tiles in ``root``'s classif/ and features/."""
    import numpy as np
    from rasterio.transform import from_origin

    from iota2.core.layout import OutputLayout

    layout = OutputLayout(root)
    rows, cols = size
    rng = np.random.default_rng(run)
    checker = np.where((np.add.outer(np.arange(rows), np.arange(cols)) % 2) == 0, 1, 5).astype(np.uint8)
    checker[:40, :40] = 7
    checker[-10:, :] = 0
    for index, tile in enumerate(("T1", "T2")):
        transform = from_origin(300000 + index * cols * 10, 4900000, 10, 10)
        options = {"transform": transform, "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "zstd"}
        for path, values in ((layout.tile_map(tile, run), checker),
                             (layout.tile_map(tile, run, "confidence"), rng.integers(1, 101, (rows, cols))),
                             (layout.validity(tile), rng.integers(0, 30, (rows, cols)))):
            path.parent.mkdir(parents=True, exist_ok=True)
            dtype = "uint16" if path == layout.validity(tile) else "uint8"
            _tile(path, values.astype(dtype), **options)
    return layout, checker


def test_final_maps_are_cogs_with_their_legend_style_and_quicklook(tmp_path, caplog):
    import logging
    import xml.etree.ElementTree as ET

    import numpy as np
    import rasterio
    from matplotlib.image import imread

    from iota2.builders.mosaic import mosaic_run, pixels_validity

    nomenclature = tmp_path / "nomenclature.txt"
    nomenclature.write_text("".join(f"{name}:{label}\n" for label, name in NAMES.items()))
    colors = tmp_path / "colors.txt"
    colors.write_text("1 255 200 0\n5 0 0 255\n")  # 7 left out: a default colour, one warning
    out = tmp_path / "out"
    for run in (0, 1):
        layout, checker = _run_tiles(out, run)
    with caplog.at_level(logging.WARNING):
        for run in (0, 1):
            mosaic_run(["T1", "T2"], run, [1, 5, 7], str(out), "ZSTD", str(colors), nomenclature_path=str(nomenclature))
    warnings = [r.getMessage() for r in caplog.records if "color_table" in r.getMessage()]
    assert len(warnings) == 1 and "label(s) 7" in warnings[0], warnings
    pixels_validity(["T1", "T2"], str(out), "ZSTD")

    final = layout.final_classification(0)
    for path in (final, layout.final_confidence(0), layout.final_color_indexed(0), layout.pixels_validity):
        assert_cog(path)
    with rasterio.open(final) as src:
        assert np.array_equal(src.read(1), np.hstack([checker, checker])) and src.nodata == 0
        assert src.profile["compress"] == "zstd"
        overview = src.read(1, out_shape=(src.height // 2, src.width // 2))
        assert set(np.unique(overview)) <= {0, 1, 5, 7}  # mode: a class is never averaged (1 and 5 would give 3)
    with rasterio.open(layout.final_confidence(0)) as src:
        assert len(np.unique(src.read(1, out_shape=(src.height // 4, src.width // 4)))) > 50  # averaged
    with rasterio.open(layout.final_color_indexed(0)) as src:
        assert src.colormap(1)[1] == (255, 200, 0, 255) and src.colormap(1)[5] == (0, 0, 255, 255)
    with rasterio.open(final) as src:  # the class map carries the same palette: the indexed map is its copy
        assert src.colormap(1)[1] == (255, 200, 0, 255)
    assert final.read_bytes() == layout.final_color_indexed(0).read_bytes()

    for path in (final, layout.final_color_indexed(0)):
        names, rows = gdal_category_names(path)
        assert names[1] == NAMES[1] and names[5] == "water" and names[7] == "forest" and rows == 3
        style = ET.parse(path.with_suffix(".qml")).getroot()
        entries = {int(e.get("value")): (e.get("label"), e.get("color")) for e in style.iter("paletteEntry")}
        assert entries[1] == (NAMES[1], "#ffc800") and entries[5] == ("water", "#0000ff") and entries[7][0] == "forest"
    ramp = ET.parse(layout.final_confidence(0).with_suffix(".qml")).getroot().find(".//colorrampshader")
    assert (ramp.get("minimumValue"), ramp.get("maximumValue")) == ("0", "100")
    validity_ramp = ET.parse(layout.pixels_validity.with_suffix(".qml")).getroot().find(".//colorrampshader")
    assert 20 <= float(validity_ramp.get("maximumValue")) <= 29

    quicklooks = sorted(p.name for p in (layout.final / "quicklooks").iterdir())
    assert quicklooks == ["Classif_Seed_0.png", "Classif_Seed_1.png", "Confidence_Seed_0.png",
                          "Confidence_Seed_1.png", "PixelsValidity.png"]
    picture = (imread(layout.final / "quicklooks" / "Classif_Seed_0.png")[..., :3] * 255).round().astype(int)
    colours = {tuple(c) for c in np.unique(picture.reshape(-1, 3), axis=0).tolist()}
    assert (255, 200, 0) in colours and (0, 0, 255) in colours
    assert not [p for p in layout.final.rglob(".*")]  # no temporary file left


def test_features_map_mosaic_is_a_cog_with_average_overviews_and_band_names(tmp_path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from iota2.core.mosaic import mosaic_files

    values = np.random.default_rng(1).normal(size=(3, 520, 530)).astype(np.float32)
    source = tmp_path / "T_features.tif"
    with rasterio.open(source, "w", driver="GTiff", width=530, height=520, count=3, dtype="float32",
                       crs="EPSG:32631", transform=from_origin(0, 0, 10, 10), tiled=True, blockxsize=256,
                       blockysize=256) as dst:
        dst.write(values)
    target = tmp_path / "final" / "features_map.tif"
    mosaic_files([source], target, "float32", "ZSTD", nodata=-10000, band_descriptions=["a", "b", "c"],
                 zstd_level=1)
    assert_cog(target)
    with rasterio.open(target) as src:
        assert src.descriptions == ("a", "b", "c") and src.nodata == -10000 and src.count == 3
        assert np.array_equal(src.read(), values)
        half = src.read(2, out_shape=(260, 265))
    assert abs(float(half[0, 0]) - float(values[1, :2, :2].mean())) < 1e-5  # average of a 2 x 2 block



@pytest.mark.parametrize("width, height, factors", [(256, 256, []), (257, 10, [2]), (1000, 1000, [2, 4]),
                                                    (2000, 1500, [2, 4, 8]), (10980, 10980, [2, 4, 8, 16, 32, 64])])
def test_overview_factors_halve_until_one_block_holds_the_map(width, height, factors):
    from iota2.core.mosaic import overview_factors

    assert overview_factors(width, height) == factors


def test_a_tile_vrt_of_chunks_is_encoded_into_the_cog_directly(tmp_path, monkeypatch):
    import numpy as np
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from iota2.core import mosaic
    from iota2.core.raster import Grid, write_chunks_vrt, write_raster

    grid = Grid(CRS.from_epsg(32631), from_origin(0, 0, 10, 10), 530, 520)
    values = np.random.default_rng(2).normal(size=(3, 520, 530)).astype(np.float32)
    values[:, :7, :9] = -10000
    windows = [[0, 0, 530, 173], [0, 173, 530, 173], [0, 346, 530, 174]]
    chunks = [write_raster(tmp_path / f"chunk_{i}.tif", values[:, r:r + h, c:c + w], grid.window_grid(Window(c, r, w, h)),
                           nodata=-10000) for i, (c, r, w, h) in enumerate(windows)]
    tile = write_chunks_vrt(chunks, windows, tmp_path / "T_features.vrt", grid, nodata=-10000,
                            band_descriptions=["a", "b", "c"])
    plain_copies = []
    monkeypatch.setattr(mosaic, "_staging", lambda *args: plain_copies.append(args) or mosaic.contextlib.nullcontext())
    target = tmp_path / "final" / "features_map.tif"
    mosaic.mosaic_files([tile], target, "float32", "ZSTD", nodata=-10000, band_descriptions=["a", "b", "c"],
                        zstd_level=1)
    assert not plain_copies  # no plain GeoTIFF staged before the COG
    assert_cog(target)
    with rasterio.open(target) as src:
        assert src.descriptions == ("a", "b", "c") and src.nodata == -10000 and src.profile["compress"] == "zstd"
        assert np.array_equal(src.read(), values)
        half = src.read(2, out_shape=(260, 265))
    assert abs(float(half[100, 100]) - float(values[1, 200:202, 200:202].mean())) < 1e-5  # average overviews
    assert half[0, 0] == -10000  # a block of no data stays no data
    assert sorted(p.name for p in (tmp_path / "final").iterdir()) == ["features_map.tif"]


def test_overviews_made_by_the_chunks_are_kept_and_the_deeper_ones_added(tmp_path):
    """A features map's tile VRT whose chunks made levels 2 and 4 (1100 px: 8 does not divide it): the COG keeps
    them, GDAL adds level 8 from level 4, and every level equals GDAL's overviews of the whole map."""
    import numpy as np
    import rasterio
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from iota2.core.mosaic import exact_overview_factors, mosaic_files, overview_factors
    from iota2.core.raster import Grid, average_levels, write_chunks_vrt, write_raster

    size, nodata = 1100, -10000
    assert overview_factors(size, size) == [2, 4, 8] and exact_overview_factors(size, size) == [2, 4]
    grid = Grid(CRS.from_epsg(32631), from_origin(300000, 5000000, 10, 10), size, size)
    rng = np.random.default_rng(5)
    values = (rng.normal(size=(3, size, size)) * 100).astype(np.float32)
    values[:, 300:420, 500:900] = nodata
    windows = [[0, 0, size, 368], [0, 368, size, 364], [0, 732, size, 368]]
    folder = tmp_path / "customF"
    chunks, levels = [], {2: [], 4: []}
    for index, (col, row, cols, rows) in enumerate(windows):
        part = values[:, row:row + rows, col:col + cols]
        chunk_grid = grid.window_grid(Window(col, row, cols, rows))
        chunks.append(write_raster(folder / f"chunk_{index}.tif", part, chunk_grid, nodata=nodata))
        for factor, level in zip([2, 4], average_levels(np.ascontiguousarray(part.transpose(1, 2, 0)), nodata, [2, 4])):
            levels[factor].append(write_raster(folder / f"chunk_{index}_x{factor}.tif", level,
                                               chunk_grid.coarsened(factor), nodata=nodata))
    names = ["a", "b", "c"]
    level_vrts = [write_chunks_vrt(levels[factor], [[c // factor, r // factor, w // factor, h // factor]
                                                    for c, r, w, h in windows], folder / f"tile_x{factor}.vrt",
                                   grid.coarsened(factor), nodata=nodata, band_descriptions=names)
                  for factor in (2, 4)]
    tile = write_chunks_vrt(chunks, windows, folder / "tile.vrt", grid, nodata=nodata, band_descriptions=names,
                            overviews=level_vrts)
    with rasterio.open(tile) as src:
        assert src.overviews(1) == [2, 4]
    before = sorted(path.name for path in folder.iterdir())
    target = tmp_path / "final" / "features_map.tif"
    mosaic_files([tile], target, "float32", "ZSTD", nodata=nodata, band_descriptions=names, zstd_level=1)
    assert_cog(target)
    reference = tmp_path / "reference.tif"
    with rasterio.open(reference, "w", **grid.profile(3, "float32", nodata=nodata)) as dst:
        dst.write(values)
    with rasterio.open(reference, "r+") as dst:
        dst.build_overviews([2, 4, 8], Resampling.average)
    with rasterio.open(target) as ours, rasterio.open(reference) as gdal:
        assert ours.overviews(1) == [2, 4, 8] and np.array_equal(ours.read(), values)
        for level in range(3):
            with rasterio.open(target, overview_level=level) as mine, \
                    rasterio.open(reference, overview_level=level) as theirs:
                assert (mine.width, mine.height) == (theirs.width, theirs.height)
                np.testing.assert_allclose(mine.read(), theirs.read(), rtol=0, atol=1e-4)
                if level < 2:  # the chunks' own levels: GDAL's values bit for bit
                    assert np.array_equal(mine.read(), theirs.read())
    assert sorted(path.name for path in folder.iterdir()) == before  # nothing left beside the tile
    assert sorted(path.name for path in target.parent.iterdir()) == ["features_map.tif"]


@pytest.mark.parametrize("compress, level", [("ZSTD", None), ("ZSTD", 1), ("DEFLATE", None)])
def test_the_cog_temporary_file_setting_leaves_the_cog_as_gdal_writes_it(tmp_path, compress, level):
    """The temporary overview file's ZSTD level speeds the COG up without changing a byte of it (the setting also
    reaches a ZSTD COG's own overviews: they keep the map's level)."""
    import numpy as np
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin

    from iota2.core.mosaic import COG_BLOCKSIZE, to_cog

    values = np.random.default_rng(2).integers(0, 40, (700, 650)).astype(np.uint16)
    source = _tile(tmp_path / "validity.tif", values, from_origin(0, 0, 10, 10))
    to_cog(source, tmp_path / "ours.tif", compress, "average", zstd_level=level)
    options = {"COMPRESS": compress, "BLOCKSIZE": COG_BLOCKSIZE, "BIGTIFF": "IF_SAFER",
               "OVERVIEW_RESAMPLING": "AVERAGE", "OVERVIEWS": "IGNORE_EXISTING"}
    if level is not None:
        options["LEVEL"] = level
    rasterio.shutil.copy(str(source), str(tmp_path / "gdal.tif"), driver="COG", **options)
    assert (tmp_path / "ours.tif").read_bytes() == (tmp_path / "gdal.tif").read_bytes()

def test_a_file_system_refusing_the_cog_temporary_file_gives_one_clear_error_and_no_file(tmp_path):
    import os

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from iota2.core.errors import OutputWriteError
    from iota2.core.mosaic import mosaic_files

    source = _tile(tmp_path / "tile.tif", np.ones((600, 600), np.uint8), from_origin(0, 0, 10, 10))
    final = tmp_path / "final"
    final.mkdir()
    with rasterio.Env(CPL_TMPDIR=str(tmp_path / "refused")):  # where GDAL's COG driver puts its overview file
        with pytest.raises(OutputWriteError, match="COG driver could not write its temporary overview file.*"
                                                   "CPL_TMPDIR.*-restart"):
            mosaic_files([source], final / "Classif_Seed_0.tif", "uint8", "ZSTD")
    assert os.listdir(final) == []
    mosaic_files([source], final / "Classif_Seed_0.tif", "uint8", "ZSTD")
    assert_cog(final / "Classif_Seed_0.tif")
