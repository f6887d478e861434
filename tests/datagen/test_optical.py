"""Tests of the Landsat 8, Sen2Cor and L3A generators."""

import numpy as np
import pytest
import rasterio

from iota2.datagen.optical import (generate_l3a, generate_landsat8, generate_s2c, l3a_product_name,
                                   landsat8_product_name, s2c_product_name)
from iota2.datagen.sentinel2 import generate_dataset

DATES = ["20180105", "20180410", "20180705"]


def test_landsat8_layout_and_values(tmp_path):
    dataset = generate_landsat8(tmp_path, tiles=("T31TCJ", "T31TDJ"), size=36, dates=DATES, seed=2)
    folder = tmp_path / "l8" / "T31TDJ" / landsat8_product_name("T31TDJ", "20180705")
    assert dataset["l8_path"] == str((tmp_path / "l8").resolve())
    with rasterio.open(folder / f"{folder.name}_FRE_B5.tif") as src:
        assert (src.width, src.height, src.res, src.dtypes[0], src.nodata) == (12, 12, (30.0, 30.0), "int16", -10000)
        assert src.transform.c == 300000.0 + 36 * 10
        nir = src.read(1)
    with rasterio.open(folder / f"{folder.name}_FRE_B4.tif") as src:
        red = src.read(1)
    assert 0 < red.min() and nir.max() <= 15000 and (nir > red).mean() > 0.5  # July: mostly vegetated
    for mask in ("CLM", "SAT", "EDG"):
        assert (folder / "MASKS" / f"{folder.name}_{mask}_XS.tif").is_file()
    with pytest.raises(ValueError, match="multiple of 6"):
        generate_landsat8(tmp_path / "bad", size=40)


def test_same_landscape_as_sentinel2(tmp_path):
    l8 = generate_landsat8(tmp_path / "l8", tiles=("T31TCJ",), size=36, dates=DATES, seed=5)
    s2 = generate_dataset(tmp_path / "s2", tiles=("T31TCJ",), size=36, dates=DATES, seed=5)
    for key in ("ground_truth", "class_map"):
        with open(l8[key], "rb") as a, open(s2[key], "rb") as b:
            assert a.read() == b.read()


def test_s2c_layout_scl_and_determinism(tmp_path):
    first = generate_s2c(tmp_path / "a", tiles=("T31TCJ",), size=24, dates=DATES, seed=3)
    generate_s2c(tmp_path / "b", tiles=("T31TCJ",), size=24, dates=DATES, seed=3)
    name = s2c_product_name("T31TCJ", "20180410")
    granules = list((tmp_path / "a" / "s2c" / "T31TCJ" / name / "GRANULE").iterdir())
    assert len(granules) == 1
    r10, r20 = granules[0] / "IMG_DATA" / "R10m", granules[0] / "IMG_DATA" / "R20m"
    assert sorted(p.name.split("_")[2] for p in r10.glob("*.jp2")) == ["B02", "B03", "B04", "B08"]
    assert sorted(p.name.split("_")[2] for p in r20.glob("*.jp2")) == ["B05", "B06", "B07", "B11", "B12", "B8A", "SCL"]
    with rasterio.open(next(r20.glob("*_SCL_20m.jp2"))) as src:
        assert src.driver == "JP2OpenJPEG" and src.res == (20.0, 20.0)
        assert set(np.unique(src.read(1))) <= {0, 1, 3, 4, 5, 6, 8, 9}
    b02 = next(r10.glob("*_B02_10m.jp2"))
    with rasterio.open(b02) as src, \
            rasterio.open(str(b02).replace(str(tmp_path / "a"), str(tmp_path / "b"))) as other:
        assert src.dtypes[0] == "uint16" and np.array_equal(src.read(1), other.read(1))
    assert first["s2_s2c_path"].endswith("s2c")


def test_l3a_layout_and_flags(tmp_path):
    dataset = generate_l3a(tmp_path, tiles=("T31TCJ",), size=24, seed=3)
    assert len(dataset["dates"]["T31TCJ"]) == 12
    name = l3a_product_name("T31TCJ", "20180315")
    folder = tmp_path / "l3a" / "T31TCJ" / name
    with rasterio.open(folder / f"{name}_FRC_B11.tif") as src:
        assert src.res == (20.0, 20.0) and src.nodata == -10000
    with rasterio.open(folder / "MASKS" / f"{name}_FLG_R1.tif") as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 3, 4}
