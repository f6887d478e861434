"""The OTB-style applications of ``iota2.common.otb_app_bank``: the labwork 6.1 snippet, native applications
against OTB's command-line applications on the same inputs (where OTB is installed), and bad input."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import Polygon, box

from iota2.common import native_apps
from iota2.common import otb_app_bank as otb
from iota2.common.images import InMemoryImage
from iota2.common.otb_expression import ExpressionError
from iota2.core.errors import ConfigError, InputDataError

X0, Y0 = 500000.0, 4900000.0
CRS = "EPSG:32631"
HAS_OTB = shutil.which("otbcli_BandMath") is not None
needs_otb = pytest.mark.skipif(not HAS_OTB, reason="OTB command-line applications are not installed")
# pytest resets warning filters per test: the module's filter of this GDAL note on reprojected arrays, again
pytestmark = pytest.mark.filterwarnings("ignore:Dataset has no geotransform")


@pytest.fixture(autouse=True)
def native_backend():
    otb.set_backend("native")
    yield
    otb.set_backend(None)


def write_tif(path, array, transform=None):
    array = np.asarray(array)
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                       dtype=array.dtype, crs=CRS, transform=transform or Affine(10, 0, X0, 0, -10, Y0)) as target:
        target.write(array)
    return str(path)


POLYGONS = [box(X0 + 15, Y0 - 303, X0 + 203, Y0 - 93),             # a centre on its left edge
            box(X0 + 400, Y0 - 500, X0 + 700, Y0 - 350),            # edges on pixel corners
            Polygon([(X0 + 100, Y0 - 300), (X0 + 300, Y0 - 500), (X0 + 90, Y0 - 580)]),  # centres on a diagonal
            box(X0 + 750, Y0 - 400, X0 + 900, Y0 - 700),            # partly outside the image
            box(X0 + 17, Y0 - 597, X0 + 183, Y0 - 407)]             # extent between pixel centres
SMALL = [box(X0 + 253 + 60 * k, Y0 - 77, X0 + 297 + 60 * k, Y0 - 23) for k in range(8)]  # FIDs up to 13


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    image = write_tif(tmp_path / "img.tif", rng.integers(-200, 1000, (4, 60, 80)).astype("int16"))
    frame = gpd.GeoDataFrame({"code": [1, 2, 2, 3, 1] + [1, 2, 3] * 2 + [1, 2]}, geometry=POLYGONS + SMALL, crs=CRS)
    vector = tmp_path / "gt.sqlite"
    frame.to_file(vector, driver="SQLite", engine="pyogrio")
    shape = tmp_path / "area.shp"
    frame.iloc[[4]].to_crs(4326).to_file(shape)
    return {"dir": tmp_path, "img": image, "vec": str(vector), "shp": str(shape)}


def otbcli(name, *args):
    result = subprocess.run([f"otbcli_{name}", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def read(path):
    with rasterio.open(path) as source:
        return source.read(), source.transform, source.dtypes[0], (source.width, source.height)


def same_image(ours, theirs):
    a, b = read(ours), read(theirs)
    assert a[1:] == b[1:]
    np.testing.assert_array_equal(a[0], b[0])


# ------------------------------------------------------------------------------------------------ labwork 6.1
def test_labwork_6_1_in_memory_and_written(data):
    raster_path, constant, shape_file = data["img"], 3, data["shp"]
    out_roi = str(data["dir"] / "roi.tif")
    band_math = otb.CreateBandMathApplication({
        "il": [raster_path],
        "exp": "im1b1 + %s" % (constant)})
    roi = otb.CreateExtractROIApplication({
        "in": band_math,
        "out": out_roi,
        "mode": "fit",
        "mode.fit.vect": shape_file})
    roi.Execute()
    in_memory = roi.GetImageAsNumpyArray("out")
    roi.ExecuteAndWriteOutput()
    values, transform, dtype, _ = read(out_roi)
    with rasterio.open(raster_path) as source:
        band = source.read(1)
    # the extent of polygon 5 (reprojected from WGS 84): columns 1..17, rows 40..58 as OTB fits it
    np.testing.assert_array_equal(values[0], band[40:59, 1:18] + 3)
    np.testing.assert_array_equal(in_memory, values[0])
    assert dtype == "float32" and transform == Affine(10, 0, X0 + 10, 0, -10, Y0 - 400)

    written = str(data["dir"] / "bm.tif")
    band_math2 = otb.CreateBandMathApplication({"il": [raster_path], "exp": "im1b1 + 3", "out": written})
    band_math2.ExecuteAndWriteOutput()
    roi2 = otb.CreateExtractROIApplication({"in": written, "out": str(data["dir"] / "roi2.tif"), "mode": "fit",
                                            "mode.fit.vect": shape_file})
    roi2.ExecuteAndWriteOutput()
    np.testing.assert_array_equal(read(str(data["dir"] / "roi2.tif"))[0], values)


class CountingImage(InMemoryImage):
    """An in-memory image that records the windows read from it."""

    def __init__(self, path):
        with rasterio.open(path) as source:
            self.array = source.read()
            self.crs, self.transform = source.crs, source.transform
        self.count, self.height, self.width = self.array.shape
        self.dtype, self.windows = "int16", []

    def read(self, window=None):
        self.windows.append(window)
        (r0, r1), (c0, c1) = window.toranges()
        return self.array[:, r0:r1, c0:c1]


def test_pipeline_reads_only_the_windows_it_needs(data):
    source = CountingImage(data["img"])
    band_math = otb.CreateBandMathApplication({"il": [(source, ["dependency"])], "exp": "im1b2 * 2"})
    roi = otb.CreateExtractROIApplication({"in": band_math, "mode": "standard", "startx": 10, "starty": 20,
                                           "sizex": 5, "sizey": 4})
    roi.Execute()
    values = roi.GetImageAsNumpyArray("out")
    np.testing.assert_array_equal(values, source.array[1, 20:24, 10:15] * 2)
    assert source.windows == [Window(10, 20, 5, 4)]


def test_pixel_type_clamps_and_truncates(data):
    out = str(data["dir"] / "cast.tif")
    app = otb.CreateBandMathApplication({"il": [data["img"]], "exp": "im1b1 / 3.0 - 50", "out": out,
                                         "pixType": "uint8"})
    app.ExecuteAndWriteOutput()
    values, _, dtype, _ = read(out)
    with rasterio.open(data["img"]) as source:
        expected = np.clip(source.read(1) / 3.0 - 50, 0, 255).astype("uint8")
    assert dtype == "uint8"
    np.testing.assert_array_equal(values[0], expected)


# ------------------------------------------------------------------------------------------------ native vs OTB
@needs_otb
@pytest.mark.parametrize("expression", ["im1b1 > 500 ? im2b3 + 3 : -im1b2",
                                        "(im1b1 - im1b4) / (im1b1 + im1b4 + 0.5) * 1000",
                                        "im1b2 >= 100 && im1b3 < 300 || im2b1 == 0",
                                        "abs(im1b1) ^ 0.5 + max(im1b2, im1b3, 10) + min(im1b4, 0)"])
def test_band_math_as_otb(data, expression):
    ours, theirs = data["dir"] / "ours.tif", data["dir"] / "theirs.tif"
    otb.CreateBandMathApplication({"il": [data["img"], data["img"]], "exp": expression,
                                   "out": str(ours)}).ExecuteAndWriteOutput()
    otbcli("BandMath", "-il", data["img"], data["img"], "-exp", expression, "-out", theirs)
    a, b = read(ours), read(theirs)
    assert a[1:] == b[1:]
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)


@needs_otb
@pytest.mark.parametrize("polygons", [[0], [1], [2], [4], [0, 1, 2, 3, 4], [5]])
def test_extract_roi_fit_as_otb(data, polygons):
    # (an extent edge exactly on a pixel edge, as polygon 3's top, is left out: OTB's coordinate transform moves it
    # by a rounding error, to one side or the other depending on the x coordinate)
    vector = data["dir"] / "fit.shp"
    shapes = POLYGONS + [box(X0 + 753, Y0 - 403, X0 + 900, Y0 - 700)]  # partly outside the image
    gpd.GeoDataFrame(geometry=[shapes[i] for i in polygons], crs=CRS).to_file(vector)
    ours, theirs = data["dir"] / "ours.tif", data["dir"] / "theirs.tif"
    otb.CreateExtractROIApplication({"in": data["img"], "out": str(ours), "mode": "fit",
                                     "mode.fit.vect": str(vector)}).ExecuteAndWriteOutput()
    otbcli("ExtractROI", "-in", data["img"], "-mode", "fit", "-mode.fit.vect", vector, "-out", theirs)
    same_image(ours, theirs)


@needs_otb
def test_extract_roi_standard_channels_and_fit_image_as_otb(data):
    ours, theirs = data["dir"] / "ours.tif", data["dir"] / "theirs.tif"
    otb.CreateExtractROIApplication({"in": data["img"], "out": str(ours), "startx": 7, "starty": 3, "sizex": 20,
                                     "sizey": 11, "cl": ["Channel3", "Channel1"]}).ExecuteAndWriteOutput()
    otbcli("ExtractROI", "-in", data["img"], "-startx", 7, "-starty", 3, "-sizex", 20, "-sizey", 11,
           "-cl", "Channel3", "Channel1", "-out", theirs)
    same_image(ours, theirs)
    reference = write_tif(data["dir"] / "ref.tif", np.zeros((1, 10, 12), "uint8"),
                          Affine(10, 0, X0 + 103, 0, -10, Y0 - 52))
    otb.CreateExtractROIApplication({"in": data["img"], "out": str(ours), "mode": "fit",
                                     "mode.fit.im": reference}).ExecuteAndWriteOutput()
    otbcli("ExtractROI", "-in", data["img"], "-mode", "fit", "-mode.fit.im", reference, "-out", theirs)
    same_image(ours, theirs)


@needs_otb
def test_superimpose_and_concatenate_as_otb(data):
    rng = np.random.default_rng(1)
    coarse = write_tif(data["dir"] / "coarse.tif", rng.integers(0, 500, (2, 40, 50)).astype("int16"),
                       Affine(20, 0, X0 - 100, 0, -20, Y0 + 60))
    ours, theirs = data["dir"] / "ours.tif", data["dir"] / "theirs.tif"
    app, moving = otb.CreateSuperimposeApplication({"inr": data["img"], "inm": coarse, "out": str(ours),
                                                    "interpolator": "nn"})
    assert moving == coarse
    app.ExecuteAndWriteOutput()
    otbcli("Superimpose", "-inr", data["img"], "-inm", coarse, "-interpolator", "nn", "-out", theirs)
    same_image(ours, theirs)

    linear = otb.CreateSuperimposeApplication({"inr": data["img"], "inm": coarse, "interpolator": "linear",
                                               "out": str(ours)})[0]
    linear.ExecuteAndWriteOutput()
    otbcli("Superimpose", "-inr", data["img"], "-inm", coarse, "-interpolator", "linear", "-out", theirs)
    a, b = read(ours)[0], read(theirs)[0]
    np.testing.assert_allclose(a[:, 2:-2, 2:-2], b[:, 2:-2, 2:-2], rtol=1e-5, atol=1e-3)

    otb.CreateConcatenateImagesApplication({"il": [data["img"], app, coarse.replace("coarse", "img")],
                                            "out": str(ours), "pixType": "int16"}).ExecuteAndWriteOutput()
    otbcli("ConcatenateImages", "-il", data["img"], theirs, data["img"], "-out", data["dir"] / "cat.tif", "int16")
    # the Superimpose written by OTB (linear) differs from ours (nn): compare the image bands and the band count
    a, b = read(ours), read(data["dir"] / "cat.tif")
    assert a[0].shape == b[0].shape == (10, 60, 80) and a[2] == b[2] == "int16"
    np.testing.assert_array_equal(a[0][:4], b[0][:4])
    np.testing.assert_array_equal(a[0][6:], b[0][6:])


@needs_otb
def test_sample_apps_as_otb(data):
    folder = data["dir"]
    otbcli("PolygonClassStatistics", "-in", data["img"], "-vec", data["vec"], "-field", "code", "-out",
           folder / "theirs.xml")
    stats = otb.CreatePolygonClassStatisticsApplication({"in": data["img"], "vec": data["vec"], "field": "code",
                                                         "out": str(folder / "ours.xml")})
    stats.ExecuteAndWriteOutput()
    assert (folder / "ours.xml").read_text() == (folder / "theirs.xml").read_text()

    def points(path):
        frame = gpd.read_file(path)
        return sorted(zip(frame.geometry.x, frame.geometry.y, frame["code"], frame["originfid"]))

    otbcli("SampleSelection", "-in", data["img"], "-vec", data["vec"], "-instats", folder / "theirs.xml",
           "-field", "code", "-strategy", "all", "-out", folder / "theirs_all.sqlite")
    otb.CreateSampleSelectionApplication({"in": data["img"], "vec": data["vec"], "instats": str(folder / "ours.xml"),
                                          "field": "code", "strategy": "all",
                                          "out": str(folder / "ours_all.sqlite")}).ExecuteAndWriteOutput()
    assert points(folder / "ours_all.sqlite") == points(folder / "theirs_all.sqlite")

    otbcli("SampleSelection", "-in", data["img"], "-vec", data["vec"], "-instats", folder / "theirs.xml",
           "-field", "code", "-strategy", "constant", "-strategy.constant.nb", 25, "-outrates",
           folder / "theirs.csv", "-out", folder / "theirs_25.sqlite")
    otb.CreateSampleSelectionApplication({"in": data["img"], "vec": data["vec"], "instats": str(folder / "ours.xml"),
                                          "field": "code", "strategy": "constant", "strategy.constant.nb": 25,
                                          "outrates": str(folder / "ours.csv"),
                                          "out": str(folder / "ours_25.sqlite")}).ExecuteAndWriteOutput()
    count = (lambda path: gpd.read_file(path)["code"].value_counts().sort_index().to_dict())
    assert count(folder / "ours_25.sqlite") == count(folder / "theirs_25.sqlite") == {1: 25, 2: 25, 3: 25}
    assert (folder / "ours.csv").read_text() == (folder / "theirs.csv").read_text()

    # extraction at OTB's points, from a file and from an in-memory pipeline
    otbcli("SampleExtraction", "-in", data["img"], "-vec", folder / "theirs_25.sqlite", "-field", "code",
           "-outfield", "list", "-outfield.list.names", "b1", "b2", "b3", "b4", "-out", folder / "theirs_x.sqlite")
    pipeline = otb.CreateBandMathXApplication({"il": [data["img"]], "exp": "im1b1; im1b2; im1b3; im1b4"})
    otb.CreateSampleExtractionApplication({"in": pipeline, "vec": str(folder / "theirs_25.sqlite"), "field": "code",
                                           "outfield": "list", "outfield.list.names": ["b1", "b2", "b3", "b4"],
                                           "out": str(folder / "ours_x.sqlite"), "ram": 4096}).ExecuteAndWriteOutput()
    tables = []
    for name in ("ours_x.sqlite", "theirs_x.sqlite"):
        connection = sqlite3.connect(folder / name)
        tables.append(gpd.read_postgis("SELECT * from output", connection, geom_col="GEOMETRY"))
        schema = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'output'").fetchone()[0]
        assert "'code' BIGINT, 'originfid' INTEGER, 'b1' FLOAT" in schema
        connection.close()
    ours, theirs = tables
    assert list(ours.columns) == list(theirs.columns)
    assert ours.drop(columns="GEOMETRY").equals(theirs.drop(columns="GEOMETRY"))
    assert list(ours.geometry.x) == list(theirs.geometry.x)


def test_sample_apps_native(data):
    """Without OTB: statistics, a constant selection and an extraction with the default prefix."""
    folder = data["dir"]
    otb.CreatePolygonClassStatisticsApplication({"in": data["img"], "vec": data["vec"], "field": "CODE",
                                                 "out": str(folder / "s.xml")}).ExecuteAndWriteOutput()
    text = (folder / "s.xml").read_text()
    # polygon 2 has 30 x 15 pixels; polygon 4 is cut by the image's right and lower edges (5 x 20)
    assert '<StatisticMap key="2" value="450" />' in text and '<StatisticMap key="4" value="100" />' in text
    selection = otb.CreateSampleSelectionApplication({"in": data["img"], "vec": data["vec"],
                                                      "instats": str(folder / "s.xml"), "field": "code",
                                                      "strategy": "constant", "strategy.constant.nb": 10,
                                                      "out": str(folder / "sel.sqlite")})
    selection.ExecuteAndWriteOutput()
    selected = gpd.read_file(folder / "sel.sqlite")
    assert selected["code"].value_counts().to_dict() == {1: 10, 2: 10, 3: 10}
    otb.CreateSampleExtractionApplication({"in": data["img"], "vec": str(folder / "sel.sqlite"), "field": "code",
                                           "out": str(folder / "x.sqlite")}).ExecuteAndWriteOutput()
    extracted = gpd.read_postgis("SELECT * from output", sqlite3.connect(folder / "x.sqlite"), geom_col="GEOMETRY")
    assert [c for c in extracted.columns if c.startswith("value_")] == ["value_0", "value_1", "value_2", "value_3"]
    with rasterio.open(data["img"]) as source:
        rows, cols = rasterio.transform.rowcol(source.transform, extracted.geometry.x, extracted.geometry.y)
        expected = source.read()[:, rows, cols].T
    np.testing.assert_array_equal(extracted[["value_0", "value_1", "value_2", "value_3"]].to_numpy(), expected)


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input_gives_one_clear_error(data):
    with pytest.raises(ConfigError, match=r"no application 'BandMaths'.*BandMath, BandMathX"):
        otb.create_application("BandMaths", {})
    with pytest.raises(ConfigError, match=r"BandMath has no parameter 'exps' \(did you mean 'exp'\?\).*il, out"):
        otb.CreateBandMathApplication({"il": [data["img"]], "exps": "im1b1"})
    app = otb.CreateBandMathApplication({"il": [data["img"]], "exp": "im1b5 + 1", "out": str(data["dir"] / "o.tif")})
    with pytest.raises(ExpressionError, match=r"'im1b5 \+ 1'.*band 5 of image 1 \(.*img\.tif\), which has 4"):
        app.ExecuteAndWriteOutput()
    app = otb.CreateBandMathApplication({"il": [data["img"]], "exp": "im1b1 +* 2", "out": str(data["dir"] / "o.tif")})
    with pytest.raises(ExpressionError, match=r"'im1b1 \+\* 2': unexpected '\*' at character 8"):
        app.ExecuteAndWriteOutput()
    with pytest.raises(ExpressionError, match="unknown function '__import__'"):
        otb.CreateBandMathApplication({"il": [data["img"]], "exp": "__import__(os)"}).Execute()
    missing = str(data["dir"] / "missing.tif")
    with pytest.raises(InputDataError, match=r"BandMath parameter 'il'.*missing\.tif' does not exist"):
        otb.CreateBandMathApplication({"il": [missing], "exp": "im1b1", "out": str(data["dir"] / "o.tif")}
                                      ).ExecuteAndWriteOutput()
    with pytest.raises(InputDataError, match=r"mode\.fit\.vect.*nothing\.shp' does not exist"):
        otb.CreateExtractROIApplication({"in": data["img"], "mode": "fit",
                                         "mode.fit.vect": str(data["dir"] / "nothing.shp")}).Execute()
    with pytest.raises(ConfigError, match="ExtractROI parameter 'mode' = 'fits' is not allowed; use one of "
                                          "standard, fit, extent"):
        otb.CreateExtractROIApplication({"in": data["img"], "mode": "fits"})
    assert not (data["dir"] / "o.tif").exists()
    assert not [path for path in data["dir"].iterdir() if ".tmp" in path.name]


def test_half_written_output_is_removed(data):
    class Failing(InMemoryImage):
        def __init__(self):
            self.crs, self.transform = CRS, Affine(10, 0, X0, 0, -10, Y0)
            self.width, self.height, self.count = 50, 400, 1

        def read(self, window=None):
            if window.row_off > 0:
                raise RuntimeError("broken source")
            return np.ones((1, int(window.height), int(window.width)), "float32")

    out = data["dir"] / "half.tif"
    with pytest.raises(RuntimeError, match="broken source"):
        native_apps.write_image(Failing(), str(out), "float32", ram_mb=1)
    assert list(data["dir"].glob("*half*")) == []


def test_backend_choice(monkeypatch):
    otb.set_backend(None)
    monkeypatch.setenv("IOTA2_OTB_APPS", "native")
    assert otb.backend() == "native"
    monkeypatch.setenv("IOTA2_OTB_APPS", "fast")
    with pytest.raises(ConfigError, match="IOTA2_OTB_APPS='fast' is not allowed; use one of auto, native, otb"):
        otb.backend()
    monkeypatch.setenv("IOTA2_OTB_APPS", "auto")
    assert otb.backend() in ("native", "otb")
    if otb.backend() == "native":
        monkeypatch.setenv("IOTA2_OTB_APPS", "otb")
        with pytest.raises(otb.OtbAppsUnavailableError, match="apt-get install otb-bin libotb-dev"):
            otb.CreateBandMathApplication({"il": [], "exp": "1"})
    otb.set_backend("native")
    with pytest.raises(ConfigError, match="ImageClassifier is not one of the native applications"):
        otb.CreateImageClassifierApplication({"in": "x.tif"})
