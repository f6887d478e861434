"""The generic time-series stack sensor: file discovery, dates, labels, masks, indices and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from iota2.core.config import validate
from iota2.core.errors import ConfigError, InputDataError
from iota2.sensors.timeseries_stack import TimeSeriesStack

BANDS = ["blue", "green", "red", "nir"]
DATES = ["20180105", "20180121", "20180206"]


def write(path: Path, array: np.ndarray, transform, crs="EPSG:32631", nodata=None, dtype="int16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = array if array.ndim == 3 else array[np.newaxis]
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                       dtype=dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(array.astype(dtype))


def make_stack(root: Path, tile: str = "T1", size: int = 12, dates=DATES, masks: bool = True,
               bands: int = 4) -> dict:
    """A small stack: value of band b at date d = 1000 * (b + 1) + d; masks flag column 0 on the second date."""
    transform = rasterio.transform.from_origin(500000.0, 4000000.0, 30.0, 30.0)
    expected = {}
    for index, date in enumerate(dates):
        data = np.stack([np.full((size, size), 1000 * (band + 1) + index, dtype=np.int16) for band in range(bands)])
        data[:, -1, -1] = -9999  # nodata corner
        write(root / tile / f"img_{date}.tif", data, transform, nodata=-9999)
        if masks:
            mask = np.zeros((size, size), dtype=np.uint8)
            if index == 1:
                mask[:, 0] = 2
            write(root / tile / f"mask_{date}.tif", mask, transform, dtype="uint8")
        expected[date] = data
    return expected


def config_for(root: Path, output: Path, **section) -> object:
    values = {"band_names": BANDS, "file_pattern": r"img_(?P<date>\d{8})", "mask_pattern": r"mask_(?P<date>\d{8})"}
    values.update(section)
    return validate({"chain": {"output_path": str(output), "list_tile": "T1", "stack_path": str(root)},
                     "timeseries_stack": values})


def test_dates_grid_labels_and_values(tmp_path):
    expected = make_stack(tmp_path / "stack")
    config = config_for(tmp_path / "stack", tmp_path / "out", name="MyCube", temporal_resolution=8)
    sensor = TimeSeriesStack(config, "T1")
    sensor.check_inputs()
    assert sensor.input_dates() == DATES
    grid = sensor.reference_grid()
    assert (grid.width, grid.height, grid.resolution) == (12, 12, (30.0, 30.0))
    dates = TimeSeriesStack.interpolation_dates(config, {"T1": sensor.input_dates()})
    assert dates == ["20180105", "20180113", "20180121", "20180129", "20180206"]
    data = sensor.read(grid, Window(0, 0, 12, 12), dates)
    assert data.sensor == "MyCube"
    assert data.labels[:4] == ["mycube_blue_20180105", "mycube_green_20180105", "mycube_red_20180105",
                               "mycube_nir_20180105"]
    assert len(data.labels) == 4 * len(dates)
    assert data.raw.shape == (3, 4, 12, 12) and data.raw.dtype == np.float32
    assert np.array_equal(data.raw[0, 2, :-1, :-1], expected[DATES[0]][2, :-1, :-1].astype(np.float32))
    # masks: column 0 of the second date, and the nodata corner on every date
    assert data.masks.dtype == np.uint8
    assert data.masks[1, :, 0].all() and not data.masks[0, :-1, 0].any()
    assert data.masks[:, -1, -1].all()
    assert data.validity[5, 0] == 2 and data.validity[5, 5] == 3 and data.validity[-1, -1] == 0
    assert not data.footprint[-1, -1] and data.footprint[0, 0]
    # gap-filling: the masked second date is interpolated from the first and third (values 0 and 2 above 1000)
    nir_0121 = data.labels.index("mycube_nir_20180121")
    assert data.features[3, 0, nir_0121] == pytest.approx(4001.0)
    validity, footprint = sensor.read_masks(grid, Window(0, 0, 12, 12))
    assert np.array_equal(validity, data.validity) and np.array_equal(footprint, data.footprint)


def test_nan_values_are_masked_with_one_warning(tmp_path, caplog):
    transform = rasterio.transform.from_origin(500000.0, 4000000.0, 30.0, 30.0)
    for index, date in enumerate(DATES):
        data = np.stack([np.full((6, 6), 0.1 * (band + 1) + index, dtype=np.float32) for band in range(4)])
        if index == 1:
            data[2, 3, 3] = np.nan  # one band of one pixel
        write(tmp_path / "stack" / "T1" / f"img_{date}.tif", data, transform, dtype="float32")
    config = config_for(tmp_path / "stack", tmp_path / "out", mask_pattern=None)
    sensor = TimeSeriesStack(config, "T1")
    grid = sensor.reference_grid()
    data = sensor.read(grid, Window(0, 0, 6, 6), DATES)
    assert data.masks[1, 3, 3] and not data.masks[1, 3, 2]
    assert not np.isnan(data.features).any()
    red = next(index for index, label in enumerate(data.labels) if label.endswith("red_20180121"))
    assert data.features[3, 3, red] == pytest.approx(1.3)  # filled in from the dates around it
    sensor.read(grid, Window(0, 0, 6, 6), DATES)
    assert caplog.text.count("holds NaN values") == 1


def test_indices_and_files_named_by_tile(tmp_path):
    transform = rasterio.transform.from_origin(0.0, 100.0, 10.0, 10.0)
    for date, (red, nir) in {"2018-03-01": (1000, 3000), "2018-03-11": (2000, 2000)}.items():
        write(tmp_path / "flat" / f"T9_{date}.tif", np.stack([np.full((4, 5), red), np.full((4, 5), nir)]), transform)
    write(tmp_path / "flat" / "T8_2018-03-01.tif", np.zeros((2, 4, 5)), transform)  # another tile
    config = validate({"chain": {"output_path": str(tmp_path / "o"), "list_tile": "T9",
                                 "stack_path": str(tmp_path / "flat")},
                       "timeseries_stack": {"band_names": ["Red", "NIR"], "indices": {"NDVI": ["nir", "red"]},
                                            "file_pattern": r"_(?P<date>\d{4}-\d{2}-\d{2})",
                                            "date_format": "%Y-%m-%d"}})
    sensor = TimeSeriesStack(config, "T9")
    sensor.check_inputs()
    assert sensor.input_dates() == ["20180301", "20180311"]
    dates = sensor.input_dates()
    data = sensor.read(sensor.reference_grid(), Window(1, 1, 3, 2), dates)
    assert data.labels == ["stack_red_20180301", "stack_nir_20180301", "stack_red_20180311", "stack_nir_20180311",
                           "stack_ndvi_20180301", "stack_ndvi_20180311"]
    assert data.features.shape == (2, 3, 6) and data.features.dtype == np.float32
    assert np.allclose(data.features[..., 4], 500.0) and np.allclose(data.features[..., 5], 0.0)


def test_pixels_read_equals_window_read(tmp_path):
    make_stack(tmp_path / "stack")
    config = config_for(tmp_path / "stack", tmp_path / "out", indices={"ndvi": ["nir", "red"]})
    sensor = TimeSeriesStack(config, "T1")
    grid = sensor.reference_grid()
    full = sensor.read(grid, Window(2, 3, 8, 9), DATES)
    rows, cols = np.array([0, 4, 8]), np.array([0, 7, 3])
    part = sensor.read(grid, Window(2, 3, 8, 9), DATES, pixels=(rows, cols))
    assert part.features.shape == (1, 3, full.features.shape[2])
    assert np.array_equal(part.features[0], full.features[rows, cols])


def test_reads_onto_another_grid(tmp_path):
    make_stack(tmp_path / "stack", masks=False)
    config = config_for(tmp_path / "stack", tmp_path / "out", mask_pattern=None)
    sensor = TimeSeriesStack(config, "T1")
    grid = sensor.reference_grid(resolution=15)  # finer grid of another sensor
    assert grid.resolution == (15.0, 15.0) and grid.width >= 24
    data = sensor.read(grid, Window(2, 2, 4, 4), DATES)
    assert np.allclose(data.raw[0, 0], 1000.0) and data.footprint.all()


def test_missing_band_names_is_a_config_error(tmp_path):
    make_stack(tmp_path / "stack")
    config = config_for(tmp_path / "stack", tmp_path / "out", band_names=[])
    with pytest.raises(ConfigError, match="band_names is mandatory"):
        TimeSeriesStack(config, "T1").check_inputs()


def test_no_file_matches_the_pattern(tmp_path):
    make_stack(tmp_path / "stack")
    config = config_for(tmp_path / "stack", tmp_path / "out", file_pattern=r"S2_(?P<date>\d{8})")
    with pytest.raises(InputDataError, match=r"no time-series stack file of tile T1 matches .*S2_.* in '.*T1'"):
        TimeSeriesStack(config, "T1").check_inputs()


def test_band_count_mismatch(tmp_path):
    make_stack(tmp_path / "stack", bands=3)
    config = config_for(tmp_path / "stack", tmp_path / "out")
    with pytest.raises(InputDataError, match=r"img_20180105.tif' has 3 band\(s\) but .*band_names lists 4"):
        TimeSeriesStack(config, "T1").check_inputs()


def test_dates_on_different_grids(tmp_path):
    make_stack(tmp_path / "stack", masks=False)
    write(tmp_path / "stack" / "T1" / "img_20180301.tif", np.zeros((4, 10, 10)),
          rasterio.transform.from_origin(500000.0, 4000000.0, 30.0, 30.0))
    config = config_for(tmp_path / "stack", tmp_path / "out", mask_pattern=None)
    with pytest.raises(InputDataError, match=r"img_20180301.tif' and '.*img_20180105.tif' have different grids"):
        TimeSeriesStack(config, "T1").check_inputs()


def test_missing_mask_and_bad_pattern(tmp_path):
    make_stack(tmp_path / "stack")
    (tmp_path / "stack" / "T1" / "mask_20180121.tif").unlink()
    config = config_for(tmp_path / "stack", tmp_path / "out")
    with pytest.raises(InputDataError, match="no mask file for the date 20180121"):
        TimeSeriesStack(config, "T1").check_inputs()
    with pytest.raises(ConfigError, match="named group 'date'"):
        config_for(tmp_path / "stack", tmp_path / "out", file_pattern=r"img_\d{8}")
    with pytest.raises(ConfigError, match="unknown band 'swir'"):
        TimeSeriesStack(config_for(tmp_path / "stack", tmp_path / "out", indices={"ndwi": ["nir", "swir"]}),
                        "T1").check_inputs()
