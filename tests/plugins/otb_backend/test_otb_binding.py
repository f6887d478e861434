"""The binding over OTB's application engine: the classic otbApplication API on real GeoTIFFs and arrays."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from otb_testing import require_otb
from rasterio.crs import CRS
from rasterio.transform import from_origin

from iota2.core.errors import ConfigError

CRS_31N = CRS.from_epsg(32631)
TRANSFORM = from_origin(500000.0, 4800000.0, 10.0, 10.0)


@pytest.fixture(scope="module")
def otb():
    return require_otb()


@pytest.fixture
def image(tmp_path):
    """A 2-band int16 GeoTIFF (40 rows, 50 columns) and its pixels."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(-500, 3000, (2, 40, 50)).astype(np.int16)
    path = tmp_path / "in" / "image.tif"
    path.parent.mkdir()
    with rasterio.open(path, "w", driver="GTiff", width=50, height=40, count=2, dtype="int16", crs=CRS_31N,
                       transform=TRANSFORM) as dst:
        dst.write(pixels)
    return path, pixels


def band_math(otb, inputs, expression):
    app = otb.Registry.CreateApplication("BandMath")
    app.SetParameterStringList("il", [str(p) for p in inputs])
    app.SetParameterString("exp", expression)
    return app


def test_registry_lists_applications(otb):
    names = otb.Registry.GetAvailableApplications()
    assert {"BandMath", "ExtractROI", "TrainVectorClassifier", "ImageClassifier"} <= set(names)
    app = otb.Registry.CreateApplication("BandMath")
    assert app.GetName() == "BandMath" and app.GetDocName() == "BandMath"
    assert app.GetParametersKeys() == ["il", "out", "exp", "ram"]
    assert app.GetParameterType("exp") == otb.ParameterType_String
    assert app.GetParameterType("il") == otb.ParameterType_InputImageList
    assert app.GetDescription()


def test_band_math_written_equals_numpy(otb, image, tmp_path):
    path, pixels = image
    app = band_math(otb, [path], "im1b1 * 2 + im1b2 - 3")
    out = tmp_path / "bm.tif"
    app.SetParameterString("out", str(out))
    app.SetParameterOutputImagePixelType("out", otb.ImagePixelType_int32)
    assert not app.HasValue("ram") or app.GetParameterInt("ram") > 0
    app.ExecuteAndWriteOutput()
    with rasterio.open(out) as src:
        assert src.dtypes == ("int32",) and src.crs == CRS_31N and src.transform == TRANSFORM
        np.testing.assert_array_equal(src.read(1), pixels[0].astype(np.int32) * 2 + pixels[1] - 3)
    assert app.GetParameterString("exp") == "im1b1 * 2 + im1b2 - 3"
    assert app.GetParameterValue("il") == [str(path)]


def test_in_memory_pipeline_band_math_to_extract_roi(otb, image, tmp_path):
    path, pixels = image
    first = band_math(otb, [path], "im1b1 + 3")
    first.Execute()
    roi = otb.Registry.CreateApplication("ExtractROI")
    roi.SetParameterInputImage("in", first.GetParameterOutputImage("out"))
    roi.SetParameterString("mode", "extent")
    for key, value in (("ulx", 5), ("uly", 4), ("lrx", 14), ("lry", 19)):
        roi.SetParameterFloat(f"mode.extent.{key}", value)
    roi.SetParameterString("mode.extent.unit", "pxl")
    out = tmp_path / "out" / "roi.tif"
    out.parent.mkdir()
    roi.SetParameterString("out", str(out))
    roi.ExecuteAndWriteOutput()
    assert sorted(p.name for p in out.parent.iterdir()) == ["roi.tif"]  # no intermediate file anywhere
    assert sorted(p.name for p in path.parent.iterdir()) == ["image.tif"]
    with rasterio.open(out) as src:
        np.testing.assert_allclose(src.read(1), pixels[0, 4:20, 5:15] + 3)
        assert src.transform == TRANSFORM @ rasterio.Affine.translation(5, 4)

    # the same through ConnectImage: the upstream application runs when the downstream one does
    second = band_math(otb, [path], "im1b2 - 1")
    roi2 = otb.Registry.CreateApplication("ExtractROI")
    assert roi2.ConnectImage("in", second, "out")
    roi2.SetParameterString("mode", "extent")
    for key, value in (("ulx", 0), ("uly", 0), ("lrx", 9), ("lry", 9)):
        roi2.SetParameterFloat(f"mode.extent.{key}", value)
    roi2.SetParameterString("mode.extent.unit", "pxl")
    roi2.Execute()
    np.testing.assert_allclose(roi2.GetImageAsNumpyArray("out"), pixels[1, :10, :10] - 1)


def test_numpy_import_with_georeferencing(otb, tmp_path):
    rng = np.random.default_rng(0)
    array = rng.random((30, 20, 3)).astype(np.float32)
    transform = from_origin(300000.0, 5000000.0, 20.0, 20.0)
    crs = CRS.from_epsg(2154)
    app = otb.Registry.CreateApplication("BandMath")
    app.ImportVectorImage("il", array, transform=transform, projection=crs.to_wkt())
    app.SetParameterString("exp", "im1b1 + im1b3")
    out = tmp_path / "imported.tif"
    app.SetParameterString("out", str(out))
    app.ExecuteAndWriteOutput()
    with rasterio.open(out) as src:
        assert src.crs == crs and src.transform.almost_equals(transform)
        np.testing.assert_allclose(src.read(1), array[:, :, 0] + array[:, :, 2], rtol=1e-6)
    # OTB's own convention: origin of the first pixel's centre and signed spacing; ExportImage round trip
    exported = app.ExportImage("out")
    assert exported["origin"] == (300010.0, 4999990.0) and exported["spacing"] == (20.0, -20.0)
    assert CRS.from_wkt(exported["projection"]) == crs and exported["array"].shape == (30, 20, 1)
    again = otb.Registry.CreateApplication("BandMath")
    again.ImportImage("il", exported)
    again.SetParameterString("exp", "im1b1 * 2")
    again.Execute()
    np.testing.assert_allclose(again.GetImageAsNumpyArray("out"), 2 * exported["array"][:, :, 0], rtol=1e-6)
    assert again.GetParameterOutputImage("out").GetOrigin() == (300010.0, 4999990.0)


def test_set_image_from_numpy_array(otb):
    array = np.arange(12, dtype=np.uint16).reshape(3, 4)
    app = otb.Registry.CreateApplication("ExtractROI")
    app.SetImageFromNumpyArray("in", array)
    app.Execute()
    out = app.GetImageAsNumpyArray("out")  # OTB's applications compute in float
    assert out.dtype == np.float32 and out.shape == (3, 4)
    np.testing.assert_array_equal(out, array)
    assert app.GetImageAsNumpyArray("out", "uint16").dtype == np.uint16
    assert app.GetVectorImageAsNumpyArray("out").shape == (3, 4, 1)


def test_unknown_application_names_the_close_ones(otb):
    with pytest.raises(ConfigError, match=r"unknown OTB application 'BandMth'; did you mean BandMath") as caught:
        otb.Registry.CreateApplication("BandMth")
    assert "BandMathX" in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_parameter_lists_the_keys(otb):
    app = otb.Registry.CreateApplication("BandMath")
    with pytest.raises(ConfigError, match=r"BandMath has no parameter 'expr'.*il, out, exp, ram"):
        app.SetParameterString("expr", "im1b1")
    with pytest.raises(ConfigError, match=r"has no parameter 'nope'"):
        app.GetParameterValue("nope")


def test_otb_errors_carry_otb_message(otb, image, tmp_path):
    path, _ = image
    app = band_math(otb, [path], "im1b1 +* 3")
    app.SetParameterString("out", str(tmp_path / "bad.tif"))
    with pytest.raises(otb.OtbError) as caught:
        app.ExecuteAndWriteOutput()
    assert isinstance(caught.value, RuntimeError)
    assert 'Unexpected operator "*" found at position 7' in str(caught.value)
    missing = otb.Registry.CreateApplication("ReadImageInfo")
    missing.SetParameterString("in", str(tmp_path / "absent.tif"))
    with pytest.raises(otb.OtbError, match="absent.tif"):
        missing.ExecuteAndWriteOutput()
    fresh = band_math(otb, [path], "im1b1")
    with pytest.raises(otb.OtbError, match="call Execute"):
        fresh.GetParameterOutputImage("out")


def test_availability_api_and_status(otb, capsys):
    from iota2.plugins.otb_backend import load_otb, otb_available, otb_command

    assert otb_available() and load_otb() is otb
    assert otb_command(["status"]) == 0
    assert "usable: yes" in capsys.readouterr().out


def test_missing_binding_or_otb_gives_one_message_with_the_fix(otb, tmp_path, monkeypatch):
    from iota2.plugins.otb_backend import OtbUnavailableError, build

    module = sys.modules["iota2.plugins.otb_backend.otbApplication"]
    monkeypatch.setattr(build, "PACKAGE_DIR", tmp_path / "package")
    monkeypatch.setenv("IOTA2_OTB_BUILD_DIR", str(tmp_path / "empty"))
    with pytest.raises(OtbUnavailableError, match="not built .*; run iota2 otb build$"):
        module._load_binding()
    monkeypatch.setenv("OTB_APPLICATION_PATH", str(tmp_path / "no_apps"))
    with pytest.raises(OtbUnavailableError, match="apt-get install otb-bin libotb-dev, then iota2 otb build"):
        module._load_binding()
    assert issubclass(OtbUnavailableError, ConfigError)
    monkeypatch.undo()  # restoring the environment leaves OTB with its applications
    assert "BandMath" in otb.Registry.GetAvailableApplications()


def test_compile_command(otb, tmp_path):
    from iota2.plugins.otb_backend import build

    command = build.compile_command(build.find_otb(), tmp_path / "x.so")
    assert command[0] in ("g++", os.environ.get("CXX")) and str(build.SOURCE) in command
    assert f"-lOTBApplicationEngine-{build.find_otb().version}" in command
    assert build.find_binding() is not None and build.source_digest() in build.find_binding().name


def test_importing_the_plugin_does_not_load_otb():
    code = ("import sys, iota2.plugins.otb_backend, iota2.plugins.otb_backend.learner; "
            "print(any('_otb_binding' in name for name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
