"""Native implementations of the OTB applications that scripts use, with OTB's parameter names and Python API.

Each application is configured with ``SetParameterString`` / ``SetParameterInt`` / ``SetParameterFloat`` /
``SetParameterStringList`` / ``SetParameterInputImage`` (or a factory of :mod:`iota2.common.otb_app_bank`), then
run with ``Execute()`` (in memory) or ``ExecuteAndWriteOutput()`` (also writes ``out``). An image application is an
:class:`~iota2.common.images.InMemoryImage` once executed: another application reads it window by window, and only
the windows read are computed. Outputs are written atomically (:func:`iota2.core.raster.atomic_output`), as OTB
writes them: uncompressed GeoTIFFs, float32 unless ``SetParameterOutputImagePixelType`` (``pixType``) says
otherwise (values clamped to the type's range, then truncated, as OTB does); sample files with the layer
``output`` and the ``GEOMETRY`` column of GDAL's SQLite driver.

Applications: BandMath, BandMathX (one band per ``;``-separated scalar expression), ExtractROI (modes standard and
fit), Superimpose, ConcatenateImages, PolygonClassStatistics, SampleSelection, SampleExtraction.
"""

from __future__ import annotations

import difflib
import math
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import rasterio
import rasterio.warp
import rasterio.windows
from rasterio.windows import Window

from iota2.common.images import InMemoryImage
from iota2.common.otb_expression import Expression
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.raster import atomic_output

#: OTB's output pixel types (``otbApplication.ImagePixelType_*``, in OTB's order) and their numpy names.
PIXEL_TYPES = {"uint8": "uint8", "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32",
               "float": "float32", "double": "float64"}
PIXEL_TYPE_CODES = dict(enumerate(PIXEL_TYPES))
_PIXEL_ALIASES = {"float32": "float", "float64": "double", "real": "float"}

DEFAULT_RAM_MB = 256
# reproject() of numpy arrays (Superimpose, from worker threads) notes that an array has no geotransform though one is
# given: the note does not apply (catch_warnings is not thread-safe, hence a filter this narrow)
warnings.filterwarnings("ignore", message="Dataset has no geotransform", module="rasterio.warp")
_THREADS = max(1, min(4, os.cpu_count() or 1))


class ApplicationError(ConfigError):
    """An application was asked for something it does not have or cannot do (unknown parameter, bad value)."""


def pixel_type(value: Any, where: str) -> str:
    """The numpy dtype of an OTB pixel type given as its name (``"uint8"``, ``"float"``) or its code (0 .. 6)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in PIXEL_TYPE_CODES:
        return PIXEL_TYPES[PIXEL_TYPE_CODES[int(value)]]
    name = _PIXEL_ALIASES.get(str(value).strip().lower(), str(value).strip().lower())
    if name not in PIXEL_TYPES:
        raise ApplicationError(f"{where}: pixel type {value!r} is unknown; use one of {', '.join(PIXEL_TYPES)}")
    return PIXEL_TYPES[name]


# ---------------------------------------------------------------------------------------------------------------------
# image inputs
# ---------------------------------------------------------------------------------------------------------------------

class RasterFile(InMemoryImage):
    """A raster file read window by window (one dataset handle per thread)."""

    def __init__(self, path: str | os.PathLike, where: str = "in"):
        self.path = str(path)
        if not os.path.exists(self.path):
            raise InputDataError(f"{where}: the image '{self.path}' does not exist; give the path of a raster file")
        try:
            with rasterio.open(self.path) as dataset:
                self.crs, self.transform = dataset.crs, dataset.transform
                self.width, self.height, self.count = dataset.width, dataset.height, dataset.count
                self.dtype, self.nodata = dataset.dtypes[0], dataset.nodata
                names = list(dataset.descriptions)
        except rasterio.errors.RasterioError as exc:
            raise InputDataError(f"{where}: cannot read the image '{self.path}' ({exc}); give a raster GDAL "
                                 "reads (GeoTIFF ...)") from exc
        self.band_names = names if all(names) else None
        self._local = threading.local()

    def _dataset(self):
        dataset = getattr(self._local, "dataset", None)
        if dataset is None or dataset.closed:
            dataset = self._local.dataset = rasterio.open(self.path)
        return dataset

    def read(self, window: Window | None = None) -> np.ndarray:
        return self._dataset().read(window=window)

    def read_bands(self, window: Window | None, indexes: list[int]) -> np.ndarray:
        """Bands ``indexes`` (from 0) of a window, shape ``(len(indexes), rows, cols)``."""
        return self._dataset().read([i + 1 for i in indexes], window=window)

    def __repr__(self) -> str:
        return self.path


class ArrayImage(InMemoryImage):
    """An image held in memory (used for the output of a real OTB application read by a native one)."""

    def __init__(self, array: np.ndarray, crs, transform, nodata=None, band_names=None):
        self.array = array if array.ndim == 3 else array[None]
        self.count, self.height, self.width = self.array.shape
        self.crs, self.transform, self.nodata, self.band_names = crs, transform, nodata, band_names
        self.dtype = str(self.array.dtype)

    def read(self, window: Window | None = None) -> np.ndarray:
        if window is None:
            return self.array
        (row0, row1), (col0, col1) = window.toranges()
        return self.array[:, row0:row1, col0:col1]


def read_bands(image: InMemoryImage, window: Window | None, indexes: list[int]) -> np.ndarray:
    """Bands ``indexes`` (from 0) of a window of any image; only those bands are read where the image allows."""
    reader = getattr(image, "read_bands", None)
    if reader is not None:
        return reader(window, list(indexes))
    return image.read(window)[list(indexes)]


def image_name(image: InMemoryImage) -> str:
    """How an input image is named in messages: its path, or its application's name."""
    if isinstance(image, RasterFile):
        return image.path
    if isinstance(image, NativeApplication):
        return f"the output of {image.name}"
    return type(image).__name__


def _same_grid(images: list[InMemoryImage], where: str) -> None:
    first = images[0]
    for image in images[1:]:
        if (image.width, image.height) != (first.width, first.height):
            raise InputDataError(f"{where}: {image_name(image)} is {image.width} x {image.height} pixels but "
                                 f"{image_name(first)} is {first.width} x {first.height}; give images of the same "
                                 "size (Superimpose puts one onto the grid of another)")


# ---------------------------------------------------------------------------------------------------------------------
# parameters and the application base class
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One parameter of a native application.

    ``kind`` is one of ``image``, ``images``, ``string``, ``int``, ``float``, ``strings``, ``choice``,
    ``out_image``, ``out_file``, ``in_file``, ``ignored`` (accepted for OTB compatibility, without effect).
    """

    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    mandatory: bool = False


class NativeApplication(InMemoryImage):
    """Base class: OTB's application API over a table of parameters (:attr:`PARAMETERS`)."""

    name = "Application"
    PARAMETERS: dict[str, Param] = {}
    #: OTB parameters that exist but are not implemented natively (a value given for one is refused).
    NOT_NATIVE: tuple[str, ...] = ()
    OUTPUT_IMAGE: str | None = "out"

    def __init__(self):
        self._values: dict[str, Any] = {}
        self._pixel_types: dict[str, str] = {}
        self._executed = False

    # ------------------------------------------------------------------------------------------ parameters
    def _param(self, key: str) -> Param:
        if key not in self.PARAMETERS:
            if key in self.NOT_NATIVE:
                raise ApplicationError(f"{self.name}: parameter '{key}' is not implemented by the native "
                                       f"application; leave it out, or install OTB (apt-get install otb-bin "
                                       "libotb-dev; iota2 otb build) and set IOTA2_OTB_APPS=otb")
            close = difflib.get_close_matches(key, list(self.PARAMETERS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ApplicationError(f"{self.name} has no parameter '{key}'{hint}; its parameters are: "
                                   f"{', '.join(self.PARAMETERS)}")
        return self.PARAMETERS[key]

    def _convert(self, key: str, value: Any) -> Any:
        param = self._param(key)
        where = f"{self.name} parameter '{key}'"
        if param.kind == "int":
            try:
                return int(str(value).strip()) if not isinstance(value, (int, np.integer)) else int(value)
            except ValueError:
                raise ApplicationError(f"{where} = {value!r} is not an integer") from None
        if param.kind == "float":
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ApplicationError(f"{where} = {value!r} is not a number") from None
        if param.kind == "choice":
            text = str(value).strip()
            if text not in param.choices:
                raise ApplicationError(f"{where} = {value!r} is not allowed; use one of {', '.join(param.choices)}")
            return text
        if param.kind in ("strings", "images"):
            if isinstance(value, (str, os.PathLike)) or not isinstance(value, (list, tuple)):
                value = [value]
            return list(value)
        if param.kind in ("string", "out_image", "out_file", "in_file"):
            return str(value)
        return value

    def SetParameterValue(self, key: str, value: Any) -> None:  # noqa: N802 - OTB's API
        """Set a parameter from any Python value (the type is the parameter's)."""
        self._values[key] = self._convert(key, value)
        self._executed = False

    SetParameterString = SetParameterValue  # noqa: N815
    SetParameterInt = SetParameterValue  # noqa: N815
    SetParameterFloat = SetParameterValue  # noqa: N815
    SetParameterStringList = SetParameterValue  # noqa: N815

    def SetParameterInputImage(self, key: str, image: Any) -> None:  # noqa: N802
        """Give an image input (an application, an :class:`InMemoryImage` or a path)."""
        if self._param(key).kind == "images":
            self._values[key] = [image]
        else:
            self.SetParameterValue(key, image)

    def AddImageToParameterInputImageList(self, key: str, image: Any) -> None:  # noqa: N802
        """Append an image to an image-list input (``il``)."""
        if self._param(key).kind != "images":
            raise ApplicationError(f"{self.name} parameter '{key}' is not a list of images")
        self._values.setdefault(key, []).append(image)
        self._executed = False

    AddParameterStringList = AddImageToParameterInputImageList  # noqa: N815

    def ConnectImage(self, key: str, application: Any, output_key: str = "out") -> None:  # noqa: N802
        """Connect the output image of another application to an image input, in memory."""
        if self._param(key).kind == "images":
            self.AddImageToParameterInputImageList(key, application)
        else:
            self.SetParameterValue(key, application)

    def SetParameterOutputImagePixelType(self, key: str, value: Any) -> None:  # noqa: N802
        """Pixel type of an output image (an ``ImagePixelType_*`` code or a name such as ``"uint8"``)."""
        if self._param(key).kind != "out_image":
            raise ApplicationError(f"{self.name} parameter '{key}' is not an output image")
        self._pixel_types[key] = pixel_type(value, f"{self.name} pixel type of '{key}'")

    def GetParameterOutputImage(self, key: str = "out"):  # noqa: N802
        """The output image (the application itself, computed when read)."""
        if key != self.OUTPUT_IMAGE:
            raise ApplicationError(f"{self.name} has no output image '{key}'")
        return self

    def UpdateParameters(self) -> None:  # noqa: N802
        """Nothing to update (kept for OTB compatibility)."""

    def GetName(self) -> str:  # noqa: N802
        return self.name

    def GetParametersKeys(self, recursive: bool = True) -> list[str]:  # noqa: N802
        """Keys of the parameters, in OTB's style (``strategy.constant.nb``)."""
        return list(self.PARAMETERS)

    def HasValue(self, key: str) -> bool:  # noqa: N802
        return key in self._values or self._param(key).default is not None

    def IsParameterEnabled(self, key: str) -> bool:  # noqa: N802
        return self.HasValue(key)

    def GetParameterValue(self, key: str) -> Any:  # noqa: N802
        param = self._param(key)
        return self._values.get(key, param.default)

    def GetParameterString(self, key: str) -> str:  # noqa: N802
        value = self.GetParameterValue(key)
        return "" if value is None else str(value)

    def GetParameterInt(self, key: str) -> int:  # noqa: N802
        return int(self.GetParameterValue(key))

    def GetParameterFloat(self, key: str) -> float:  # noqa: N802
        return float(self.GetParameterValue(key))

    def GetParameterStringList(self, key: str) -> list[str]:  # noqa: N802
        return [str(value) for value in self.GetParameterValue(key) or []]

    def _get(self, key: str) -> Any:
        return self.GetParameterValue(key)

    def _required(self, key: str) -> Any:
        value = self._get(key)
        if value is None or value == "" or value == []:
            raise ApplicationError(f"{self.name}: parameter '{key}' is required")
        return value

    def _image(self, key: str, value: Any = None) -> InMemoryImage:
        from iota2.common.otb_app_bank import as_image

        return as_image(self._required(key) if value is None else value, f"{self.name} parameter '{key}'")

    # ------------------------------------------------------------------------------------------ running
    def Execute(self) -> None:  # noqa: N802
        """Check the parameters and prepare the output (an image is computed when its windows are read)."""
        self._prepare()
        self._executed = True

    def ExecuteAndWriteOutput(self) -> None:  # noqa: N802
        """:meth:`Execute`, then write the outputs."""
        self.Execute()
        self._write()

    def ensure_executed(self) -> None:
        """Execute the application if it was not (or if a parameter changed since)."""
        if not self._executed:
            self.Execute()

    def _prepare(self) -> None:
        raise NotImplementedError

    def _write(self) -> None:
        out = self._required(self.OUTPUT_IMAGE)
        write_image(self, out, self._pixel_types.get(self.OUTPUT_IMAGE, "float32"), self._get("ram"))

    def GetImageAsNumpyArray(self, key: str = "out", band: int = 0) -> np.ndarray:  # noqa: N802
        """One band (from 0) of the output image, shape ``(rows, cols)``."""
        self.GetParameterOutputImage(key)
        self.ensure_executed()
        return read_bands(self, None, [band])[0]

    def GetVectorImageAsNumpyArray(self, key: str = "out") -> np.ndarray:  # noqa: N802
        """Every band of the output image, shape ``(rows, cols, bands)`` as OTB gives it."""
        self.GetParameterOutputImage(key)
        self.ensure_executed()
        return np.moveaxis(self.read(None), 0, -1)

    def read(self, window: Window | None = None) -> np.ndarray:
        self.ensure_executed()
        window = window or Window(0, 0, self.width, self.height)
        return self._compute(window, list(range(self.count)))

    def read_bands(self, window: Window | None, indexes: list[int]) -> np.ndarray:
        self.ensure_executed()
        window = window or Window(0, 0, self.width, self.height)
        return self._compute(window, list(indexes))

    def _compute(self, window: Window, bands: list[int]) -> np.ndarray:
        raise ApplicationError(f"{self.name} has no output image")

    def __repr__(self) -> str:
        return f"<native {self.name}>"


_RAM = Param("int", DEFAULT_RAM_MB)
_ELEVATION = {"elev.dem": Param("ignored"), "elev.geoid": Param("ignored"), "elev.default": Param("ignored")}


def _window_rows(image: InMemoryImage, ram_mb: int | None) -> int:
    """Rows per block so that a block's float64 working copies fit in ``ram`` MB (OTB's ``ram``)."""
    per_row = max(1, image.width * max(1, image.count) * 8 * 4)
    return max(1, min(image.height, int((ram_mb or DEFAULT_RAM_MB) * 2**20 // per_row)))


def blocks(image: InMemoryImage, ram_mb: int | None, rows: int | None = None) -> list[Window]:
    """Windows of whole rows covering an image, sized by ``ram`` and at most a quarter of it (for threads)."""
    rows = rows or min(_window_rows(image, ram_mb), max(16, math.ceil(image.height / (2 * _THREADS))))
    return [Window(0, row, image.width, min(rows, image.height - row)) for row in range(0, image.height, rows)]


def cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """Values converted to an output pixel type as OTB does: clamped to the type's range, then truncated."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            values = np.clip(values, info.min, info.max)
            values = np.nan_to_num(values, nan=0)
    return values.astype(dtype, copy=False)


def write_image(image: InMemoryImage, out: str, dtype: str, ram_mb: int | None = None) -> Path:
    """Write an image as an uncompressed GeoTIFF, block by block (two threads compute while one writes).

    ``out`` may carry OTB's extended file name (``out.tif?&gdal:co:COMPRESS=DEFLATE``): its ``gdal:co`` options
    are passed to GDAL, other options are ignored.
    """
    path, _, extended = str(out).partition("?")
    options = {}
    for part in extended.split("&"):
        if part.startswith("gdal:co:") and "=" in part:
            key, value = part[len("gdal:co:"):].split("=", 1)
            options[key] = value
    profile = {"driver": "GTiff", "width": image.width, "height": image.height, "count": image.count,
               "dtype": dtype, "crs": image.crs, "transform": image.transform, **options}
    windows = blocks(image, ram_mb)
    with atomic_output(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as target:
            if image.band_names and len(image.band_names) == image.count:
                for index, name in enumerate(image.band_names, start=1):
                    target.set_band_description(index, name)
            with ThreadPoolExecutor(_THREADS) as pool:
                for window, values in zip(windows, pool.map(image.read, windows)):
                    target.write(cast(values, dtype), window=window)
    return Path(path)


# ---------------------------------------------------------------------------------------------------------------------
# image applications
# ---------------------------------------------------------------------------------------------------------------------

class _ImageApplication(NativeApplication):
    """An application whose output is an image on the grid of ``grid_source`` (set by :meth:`_prepare`)."""

    dtype = "float32"

    def _take_grid(self, image: InMemoryImage, count: int, names: list[str] | None = None) -> None:
        self.crs, self.transform = image.crs, image.transform
        self.width, self.height, self.count = image.width, image.height, count
        self.nodata = None
        self.band_names = names


class BandMath(_ImageApplication):
    """``out = exp(il)``: one band computed from the bands of the input images (OTB's BandMath)."""

    name = "BandMath"
    PARAMETERS = {"il": Param("images", mandatory=True), "out": Param("out_image"), "ram": _RAM,
                  "exp": Param("string", mandatory=True)}

    def _prepare(self) -> None:
        self._sources = [self._image("il", value) for value in self._required("il")]
        _same_grid(self._sources, f"{self.name} il")
        self._expressions = self._parse(self._required("exp"))
        self._take_grid(self._sources[0], len(self._expressions))

    def _parse(self, text: str) -> list[Expression]:
        return [Expression(text, [image.count for image in self._sources], f"{self.name} exp",
                           [image_name(image) for image in self._sources])]

    def _compute(self, window: Window, bands: list[int]) -> np.ndarray:
        expressions = [self._expressions[band] for band in bands]
        needed: dict[int, list[int]] = {}
        for expression in expressions:
            for image, band in expression.bands:
                needed.setdefault(image, [])
                if band not in needed[image]:
                    needed[image].append(band)
        values = {}
        for image, indexes in needed.items():
            block = read_bands(self._sources[image], window, indexes)
            for position, band in enumerate(indexes):
                values[(image, band)] = block[position].astype(np.float64, copy=False)
        shape = (int(window.height), int(window.width))
        offset = (int(window.row_off), int(window.col_off))
        out = np.empty((len(expressions),) + shape, dtype=np.float32)
        for position, expression in enumerate(expressions):
            out[position] = expression.evaluate(values, shape, offset)
        return out


class BandMathX(BandMath):
    """OTB's BandMathX, basics: one output band per ``;``-separated scalar expression over ``im<I>b<J>``.

    Vector operands (``im1``, ``im1b1N`` neighbourhoods), matrices and ``exp`` files need OTB.
    """

    name = "BandMathX"
    PARAMETERS = {"il": Param("images", mandatory=True), "out": Param("out_image"), "ram": _RAM,
                  "exp": Param("string"), "incontext": Param("ignored")}
    NOT_NATIVE = ("outcontext",)

    def _parse(self, text: str) -> list[Expression]:
        parts = [part for part in text.split(";") if part.strip()]
        if not parts:
            raise ApplicationError(f"{self.name} exp = {text!r} has no expression; write e.g. 'im1b1 + 1; im1b2'")
        return [Expression(part.strip(), [image.count for image in self._sources], f"{self.name} exp",
                           [image_name(image) for image in self._sources]) for part in parts]


class ConcatenateImages(_ImageApplication):
    """The bands of every image of ``il``, in order, in one image (OTB's ConcatenateImages)."""

    name = "ConcatenateImages"
    PARAMETERS = {"il": Param("images", mandatory=True), "out": Param("out_image"), "ram": _RAM}

    def _prepare(self) -> None:
        self._sources = [self._image("il", value) for value in self._required("il")]
        _same_grid(self._sources, f"{self.name} il")
        names = []
        for image in self._sources:
            names.extend(image.band_names or [None] * image.count)
        self._bands = [(index, band) for index, image in enumerate(self._sources) for band in range(image.count)]
        self._take_grid(self._sources[0], len(self._bands), names if all(names) else None)

    def _compute(self, window: Window, bands: list[int]) -> np.ndarray:
        out = np.empty((len(bands), int(window.height), int(window.width)), dtype=np.float32)
        by_image: dict[int, list[tuple[int, int]]] = {}
        for position, band in enumerate(bands):
            image, index = self._bands[band]
            by_image.setdefault(image, []).append((position, index))
        for image, pairs in by_image.items():
            block = read_bands(self._sources[image], window, [index for _, index in pairs])
            for (position, _), values in zip(pairs, block):
                out[position] = values
        return out


class ExtractROI(_ImageApplication):
    """A part of an image (OTB's ExtractROI): ``mode standard`` (``startx``, ``starty``, ``sizex``, ``sizey``
    in pixels) or ``mode fit`` (the extent of ``mode.fit.vect`` or of ``mode.fit.im``), bands ``cl``.

    Fit follows OTB: the first pixel is the one whose corner precedes the extent's minimum (``floor``), the
    last the one before the pixel holding the maximum, clipped to the image.
    """

    name = "ExtractROI"
    PARAMETERS = {"in": Param("image", mandatory=True), "out": Param("out_image"), "ram": _RAM,
                  "mode": Param("choice", "standard", ("standard", "fit", "extent")),
                  "mode.fit.vect": Param("in_file"), "mode.fit.im": Param("image"),
                  "mode.extent.ulx": Param("float"), "mode.extent.uly": Param("float"),
                  "mode.extent.lrx": Param("float"), "mode.extent.lry": Param("float"),
                  "mode.extent.unit": Param("choice", "pxl", ("pxl", "phy")),
                  "startx": Param("int", 0), "starty": Param("int", 0), "sizex": Param("int"), "sizey": Param("int"),
                  "cl": Param("strings"), **_ELEVATION}
    NOT_NATIVE = ("mode.radius.r", "mode.radius.cx", "mode.radius.cy", "mode.radius.unitr", "mode.radius.unitc",
                  "mode.fit.ref")

    def _prepare(self) -> None:
        source = self._image("in")
        self._source = source
        mode = self._get("mode")
        if mode == "fit":
            col0, row0, col1, row1 = self._fit_extent(source)
        elif mode == "extent":
            col0, row0, col1, row1 = self._extent(source)
        else:
            col0, row0 = self._get("startx"), self._get("starty")
            sizex = self._get("sizex") if self._get("sizex") else source.width - col0
            sizey = self._get("sizey") if self._get("sizey") else source.height - row0
            col1, row1 = col0 + sizex, row0 + sizey
            if col0 < 0 or row0 < 0 or col1 > source.width or row1 > source.height or sizex <= 0 or sizey <= 0:
                raise ApplicationError(
                    f"{self.name}: startx={col0}, starty={row0}, sizex={sizex}, sizey={sizey} is not inside "
                    f"{image_name(source)} ({source.width} x {source.height} pixels)")
        self._offset = (row0, col0)
        self._channels = self._channel_list(source)
        names = [source.band_names[i] for i in self._channels] if source.band_names else None
        self._take_grid(source, len(self._channels), names)
        self.width, self.height = col1 - col0, row1 - row0
        self.transform = source.transform @ source.transform.translation(col0, row0)

    def _channel_list(self, source: InMemoryImage) -> list[int]:
        channels = self._get("cl")
        if not channels:
            return list(range(source.count))
        indexes = []
        for channel in channels:
            text = str(channel).strip()
            number = text[len("Channel"):] if text.lower().startswith("channel") else text
            if not number.isdigit() or not 1 <= int(number) <= source.count:
                raise ApplicationError(f"{self.name} cl: {channel!r} is not a band of {image_name(source)}; use "
                                       f"Channel1 .. Channel{source.count}")
            indexes.append(int(number) - 1)
        return indexes

    def _clip(self, source, col0, row0, col1, row1, what):
        col0, row0 = max(0, col0), max(0, row0)
        col1, row1 = min(source.width, col1), min(source.height, row1)
        if col1 <= col0 or row1 <= row0:
            raise InputDataError(f"{self.name}: {what} does not overlap {image_name(source)}; give a vector or an "
                                 "image over the input image")
        return col0, row0, col1, row1

    def _bounds_to_pixels(self, source, left, bottom, right, top):
        inverse = ~source.transform
        xs, ys = zip(*(inverse @ corner for corner in ((left, top), (right, bottom), (left, bottom), (right, top))))
        return (math.floor(min(xs)), math.floor(min(ys)), math.floor(max(xs)), math.floor(max(ys)))

    def _fit_extent(self, source: InMemoryImage):
        vector, reference = self._get("mode.fit.vect"), self._get("mode.fit.im")
        if vector:
            from iota2.common.otb_app_bank import read_vector

            frame = read_vector(vector, f"{self.name} mode.fit.vect")
            if source.crs and frame.crs and frame.crs != source.crs:
                frame = frame.to_crs(source.crs)
            bounds, what = frame.total_bounds, f"the extent of '{vector}'"
        elif reference is not None:
            image = self._image("mode.fit.im")
            bounds = rasterio.transform.array_bounds(image.height, image.width, image.transform)
            if source.crs and image.crs and image.crs != source.crs:
                bounds = rasterio.warp.transform_bounds(image.crs, source.crs, *bounds)
            what = f"the extent of {image_name(image)}"
        else:
            raise ApplicationError(f"{self.name}: mode fit needs mode.fit.vect (a vector file) or mode.fit.im")
        col0, row0, col1, row1 = self._bounds_to_pixels(source, *bounds)
        return self._clip(source, col0, row0, col1, row1, what)

    def _extent(self, source: InMemoryImage):
        ulx, uly = self._required("mode.extent.ulx"), self._required("mode.extent.uly")
        lrx, lry = self._required("mode.extent.lrx"), self._required("mode.extent.lry")
        if self._get("mode.extent.unit") == "pxl":
            return self._clip(source, int(ulx), int(uly), int(lrx) + 1, int(lry) + 1, "the extent")
        col0, row0, col1, row1 = self._bounds_to_pixels(source, ulx, lry, lrx, uly)
        return self._clip(source, col0, row0, col1, row1, "the extent")

    def _compute(self, window: Window, bands: list[int]) -> np.ndarray:
        shifted = Window(window.col_off + self._offset[1], window.row_off + self._offset[0], window.width,
                         window.height)
        return read_bands(self._source, shifted, [self._channels[band] for band in bands]).astype(np.float32,
                                                                                                   copy=False)


class Superimpose(_ImageApplication):
    """``inm`` resampled onto the grid of ``inr`` (OTB's Superimpose).

    Interpolators: ``nn`` (nearest), ``linear`` (bilinear), ``bco`` (OTB's default; done with GDAL's cubic
    convolution, which differs from OTB's bicubic by a fraction of the local contrast). Pixels of ``inr`` outside
    ``inm`` get ``fv`` (0).
    """

    name = "Superimpose"
    PARAMETERS = {"inr": Param("image", mandatory=True), "inm": Param("image", mandatory=True),
                  "out": Param("out_image"), "ram": _RAM, "lms": Param("ignored"), "fv": Param("float", 0.0),
                  "mode": Param("choice", "default", ("default",)),
                  "interpolator": Param("choice", "bco", ("nn", "linear", "bco")),
                  "interpolator.bco.radius": Param("ignored"), **_ELEVATION}
    _RESAMPLING = {"nn": rasterio.warp.Resampling.nearest, "linear": rasterio.warp.Resampling.bilinear,
                   "bco": rasterio.warp.Resampling.cubic}

    def _prepare(self) -> None:
        self._reference, self._moving = self._image("inr"), self._image("inm")
        if self._reference.crs is None or self._moving.crs is None:
            raise InputDataError(f"{self.name}: {image_name(self._reference)} and {image_name(self._moving)} "
                                 "must both have a coordinate system")
        self._take_grid(self._reference, self._moving.count, self._moving.band_names)

    def _compute(self, window: Window, bands: list[int]) -> np.ndarray:
        fill = float(self._get("fv"))
        out = np.full((len(bands), int(window.height), int(window.width)), fill, dtype=np.float32)
        destination = rasterio.windows.transform(window, self.transform)
        bounds = rasterio.windows.bounds(window, self.transform)
        moving = self._moving
        if moving.crs != self.crs:
            bounds = rasterio.warp.transform_bounds(self.crs, moving.crs, *bounds, densify_pts=21)
        margin = 3
        src = rasterio.windows.from_bounds(*bounds, transform=moving.transform)
        col0 = max(0, math.floor(src.col_off) - margin)
        row0 = max(0, math.floor(src.row_off) - margin)
        col1 = min(moving.width, math.ceil(src.col_off + src.width) + margin)
        row1 = min(moving.height, math.ceil(src.row_off + src.height) + margin)
        if col1 <= col0 or row1 <= row0:
            return out
        read_window = Window(col0, row0, col1 - col0, row1 - row0)
        values = read_bands(moving, read_window, bands).astype(np.float32, copy=False)
        source_transform = rasterio.windows.transform(read_window, moving.transform)
        rasterio.warp.reproject(values, out, src_transform=source_transform, src_crs=moving.crs,
                                dst_transform=destination, dst_crs=self.crs,
                                resampling=self._RESAMPLING[self._get("interpolator")], src_nodata=None,
                                dst_nodata=None, init_dest_nodata=False, num_threads=1)
        return out


# ---------------------------------------------------------------------------------------------------------------------
# samples applications
# ---------------------------------------------------------------------------------------------------------------------

def _find_field(frame, requested: str, where: str, path: str) -> str:
    columns = [column for column in frame.columns if column != frame.geometry.name]
    for column in columns:
        if column == requested:
            return column
    for column in columns:
        if column.lower() == requested.lower():
            return column
    raise InputDataError(f"{where}: '{path}' has no field '{requested}'; its fields are {', '.join(columns)}")


def _ring_crossings(ring: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Number of crossings of the ray from each pixel centre ``(xs[j], ys[i])`` towards +x with a ring, exactly as
    GDAL's ``OGRLinearRing::isPointInRing`` counts them (which OTB's sampling uses): an edge counts when it straddles
    the ray's line (``y1 > 0 >= y2`` or the reverse) and meets the ray strictly right of the point. Shape
    ``(len(ys), len(xs))``; each edge is computed on the rows it straddles only."""
    count = np.zeros((len(ys), len(xs)), dtype=np.int32)
    for index in range(len(ring) - 1):
        (xa, ya), (xb, yb) = ring[index + 1], ring[index]
        ys1, ys2 = ya - ys, yb - ys
        rows = np.flatnonzero(((ys1 > 0) & (ys2 <= 0)) | ((ys2 > 0) & (ys1 <= 0)))
        if not len(rows):
            continue
        first, last = rows[0], rows[-1] + 1  # the rows an edge straddles are consecutive
        y1, y2 = ys1[first:last, None], ys2[first:last, None]
        x1, x2 = xa - xs[None, :], xb - xs[None, :]
        count[first:last] += ((x1 * y2 - x2 * y1) / (y2 - y1)) > 0.0
    return count


def _polygons_of(geometry) -> list:
    kind = geometry.geom_type
    if kind == "Polygon":
        return [geometry]
    if kind in ("MultiPolygon", "GeometryCollection"):
        return [part for part in geometry.geoms if part.geom_type == "Polygon"]
    return []


def pixels_in_polygon(geometry, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Which pixel centres (columns at ``xs``, rows at ``ys``) fall in a (multi)polygon, with OTB's rule: inside
    the exterior ring and in no hole, by GDAL's crossing count (a centre on a left or lower edge is in, on a right
    or upper edge is out); shape ``(len(ys), len(xs))``."""
    inside = np.zeros((len(ys), len(xs)), dtype=bool)
    for polygon in _polygons_of(geometry):
        exterior = np.asarray(polygon.exterior.coords)[:, :2]
        holes = [np.asarray(ring.coords)[:, :2] for ring in polygon.interiors]
        mine = _ring_crossings(exterior, xs, ys) % 2 == 1
        for hole in holes:
            mine &= _ring_crossings(hole, xs, ys) % 2 == 0
        inside |= mine
    return inside


def polygon_pixels(image: InMemoryImage, frame, field_name: str, mask: InMemoryImage | None = None
                   ) -> Iterator[tuple[int, Any, np.ndarray, np.ndarray]]:
    """The pixels whose centre falls in each polygon (:func:`pixels_in_polygon`), inside the image (and where
    ``mask`` > 0), as OTB's PolygonClassStatistics and SampleSelection find them.

    Yields ``(fid, label, rows, cols)`` per feature, in FID order; a pixel in two polygons is yielded for both,
    as OTB counts it.
    """
    transform = image.transform
    inverse = ~transform
    for fid, geometry, label in zip(frame.index, frame.geometry.values, frame[field_name].values):
        if geometry is None or geometry.is_empty or label is None or (isinstance(label, float) and np.isnan(label)):
            continue
        left, bottom, right, top = geometry.bounds
        xs, ys = zip(*(inverse @ corner for corner in ((left, top), (right, bottom))))
        col0, col1 = max(0, math.floor(min(xs))), min(image.width, math.ceil(max(xs)) + 1)
        row0, row1 = max(0, math.floor(min(ys))), min(image.height, math.ceil(max(ys)) + 1)
        if col1 <= col0 or row1 <= row0:
            continue
        centres_x = transform.c + (np.arange(col0, col1) + 0.5) * transform.a
        centres_y = transform.f + (np.arange(row0, row1) + 0.5) * transform.e
        burnt = pixels_in_polygon(geometry, centres_x, centres_y)
        if mask is not None:
            window = Window(col0, row0, col1 - col0, row1 - row0)
            burnt &= read_bands(mask, window, [0])[0] > 0
        rows, cols = np.nonzero(burnt)
        if len(rows):
            yield int(fid), label, rows + row0, cols + col0


class _VectorApplication(NativeApplication):
    OUTPUT_IMAGE = None
    dtype = "float32"

    def _vector(self, key: str = "vec"):
        from iota2.common.otb_app_bank import read_vector

        path = self._required(key)
        frame = read_vector(path, f"{self.name} parameter '{key}'", self._get("layer") if "layer" in
                            self.PARAMETERS else None)
        return path, frame

    def _to_image_crs(self, frame, image: InMemoryImage):
        if image.crs is not None and frame.crs is not None and frame.crs != image.crs:
            return frame.to_crs(image.crs)
        return frame

    def GetParameterOutputImage(self, key: str = "out"):  # noqa: N802
        raise ApplicationError(f"{self.name} has no output image")


class PolygonClassStatistics(_VectorApplication):
    """Pixels per class and per polygon of a vector over an image (OTB's PolygonClassStatistics): the XML of
    ``samplesPerClass`` and ``samplesPerVector`` (keys: class labels and FIDs)."""

    name = "PolygonClassStatistics"
    PARAMETERS = {"in": Param("image", mandatory=True), "vec": Param("in_file", mandatory=True),
                  "out": Param("out_file", mandatory=True), "field": Param("string", mandatory=True),
                  "mask": Param("image"), "layer": Param("int", 0), "ram": _RAM, **_ELEVATION}

    def _prepare(self) -> None:
        image = self._image("in")
        path, frame = self._vector()
        name = _find_field(frame, self._required("field"), f"{self.name} field", path)
        mask = self._image("mask") if self._get("mask") is not None else None
        per_class: dict[Any, int] = {}
        per_vector: dict[int, int] = {}
        for fid, label, rows, _ in polygon_pixels(image, self._to_image_crs(frame, image), name, mask):
            per_class[label] = per_class.get(label, 0) + len(rows)
            per_vector[fid] = per_vector.get(fid, 0) + len(rows)
        self.samples_per_class = dict(sorted(per_class.items(), key=lambda item: _label_order(item[0])))
        self.samples_per_vector = dict(sorted(per_vector.items(), key=lambda item: str(item[0])))  # as text, as OTB

    def _write(self) -> None:
        write_statistics_xml(self._required("out"), self.samples_per_class, self.samples_per_vector)


def _label_order(label: Any):
    """OTB sorts the class keys as text (``"10" < "2"``)."""
    return str(_label_text(label))


def _label_text(label: Any) -> str:
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(label)


def write_statistics_xml(path: str, per_class: dict, per_vector: dict) -> Path:
    """Write the XML of PolygonClassStatistics, as OTB writes it, atomically."""
    lines = ['<?xml version="1.0" ?>', "<GeneralStatistics>", '    <Statistic name="samplesPerClass">']
    lines += [f"        <StatisticMap key={quoteattr(_label_text(key))} value=\"{value}\" />"
              for key, value in per_class.items()]
    lines += ["    </Statistic>", '    <Statistic name="samplesPerVector">']
    lines += [f"        <StatisticMap key=\"{key}\" value=\"{value}\" />" for key, value in per_vector.items()]
    lines += ["    </Statistic>", "</GeneralStatistics>", ""]
    with atomic_output(path) as tmp:
        Path(tmp).write_text("\n".join(lines), encoding="utf-8")
    return Path(path)


def read_statistics_xml(path: str, where: str) -> dict[str, int]:
    """``samplesPerClass`` of a PolygonClassStatistics XML: label (as text) -> pixel count."""
    import xml.etree.ElementTree as ElementTree

    if not os.path.exists(path):
        raise InputDataError(f"{where}: the statistics file '{path}' does not exist; run PolygonClassStatistics "
                             "first (its 'out')")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise InputDataError(f"{where}: '{path}' is not a PolygonClassStatistics XML ({exc})") from exc
    counts = {}
    for statistic in root.iter("Statistic"):
        if statistic.get("name") == "samplesPerClass":
            for entry in statistic.iter("StatisticMap"):
                counts[entry.get("key")] = int(entry.get("value"))
    return counts


def write_vector(frame, path: str, where: str) -> Path:
    """Write a samples vector as OTB does (layer ``output`` for SQLite and GeoPackage), atomically."""
    import pyogrio

    path = str(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".shp":
        folder = Path(tempfile.mkdtemp(prefix=".write.", dir=Path(path).parent or "."))
        try:
            pyogrio.write_dataframe(frame, folder / Path(path).name, driver="ESRI Shapefile")
            for part in folder.iterdir():
                os.replace(part, Path(path).with_suffix(part.suffix))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Path(path)
    drivers = {".sqlite": ("SQLite", {}), ".gpkg": ("GPKG", {"VERSION": "1.2"}), ".geojson": ("GeoJSON", {}),
               ".json": ("GeoJSON", {})}
    if suffix not in drivers:
        raise ApplicationError(f"{where}: cannot write '{path}'; name it .sqlite, .gpkg, .shp or .geojson")
    driver, options = drivers[suffix]
    with atomic_output(path) as tmp:
        layer = {"layer": "output"} if driver != "GeoJSON" else {}
        pyogrio.write_dataframe(frame, tmp, driver=driver, **layer, **options)
    return Path(path)


class SampleSelection(_VectorApplication):
    """Sample pixels in the polygons of a vector (OTB's SampleSelection): points at pixel centres with the class
    field and ``originfid`` (the polygon's FID). Strategies and samplers are the chain's
    (:func:`iota2.builders.sampling.select_samples`); OTB's defaults (``smallest``, ``periodic``)."""

    name = "SampleSelection"
    PARAMETERS = {"in": Param("image", mandatory=True), "mask": Param("image"),
                  "vec": Param("in_file", mandatory=True), "out": Param("out_file", mandatory=True),
                  "instats": Param("in_file", mandatory=True), "outrates": Param("out_file"),
                  "field": Param("string", mandatory=True), "layer": Param("int", 0),
                  "strategy": Param("choice", "smallest", ("byclass", "constant", "percent", "total", "smallest",
                                                          "all")),
                  "strategy.byclass.in": Param("in_file"), "strategy.constant.nb": Param("int"),
                  "strategy.percent.p": Param("float", 0.5), "strategy.total.v": Param("int", 1000),
                  "sampler": Param("choice", "periodic", ("periodic", "random")),
                  "sampler.periodic.jitter": Param("int", 0), "rand": Param("int"), "ram": _RAM, **_ELEVATION}
    NOT_NATIVE = ("inxml", "outxml")
    _OPTIONS = ("strategy.byclass.in", "strategy.constant.nb", "strategy.percent.p", "strategy.total.v",
                "sampler.periodic.jitter")

    def _prepare(self) -> None:
        import geopandas as gpd
        import pandas as pd

        from iota2.builders.sampling import required_samples, select_samples, validate_sample_selection

        image = self._image("in")
        path, frame = self._vector()
        name = _find_field(frame, self._required("field"), f"{self.name} field", path)
        read_statistics_xml(self._required("instats"), f"{self.name} instats")
        mask = self._image("mask") if self._get("mask") is not None else None
        parts = [(fid, label, rows, cols) for fid, label, rows, cols in
                 polygon_pixels(image, self._to_image_crs(frame, image), name, mask)]
        lengths = [len(rows) for _, _, rows, _ in parts]
        candidates = pd.DataFrame({
            name: np.repeat(np.array([label for _, label, _, _ in parts], dtype=frame[name].dtype), lengths),
            "originfid": np.repeat(np.array([fid for fid, _, _, _ in parts], dtype=np.int64), lengths),
            "row": np.concatenate([rows for _, _, rows, _ in parts]) if parts else np.empty(0, np.int64),
            "col": np.concatenate([cols for _, _, _, cols in parts]) if parts else np.empty(0, np.int64)})
        candidates = candidates.sort_values(["row", "col"], kind="stable").reset_index(drop=True)
        candidates["tile"] = ""
        params = {"strategy": self._get("strategy"), "sampler": self._get("sampler"), "rand": self._get("rand")}
        params.update({key: self._get(key) for key in self._OPTIONS if self._get(key) is not None})
        if params["strategy"] == "constant" and params.get("strategy.constant.nb") is None:
            raise ApplicationError(f"{self.name}: strategy constant needs strategy.constant.nb")
        params = validate_sample_selection(params, warn=False)
        sizes = candidates[name].value_counts().to_dict()
        self.required = required_samples({label: int(count) for label, count in sizes.items()}, params)
        self.totals = sizes
        selected = select_samples(candidates, name, params, params["rand"])
        xs, ys = rasterio.transform.xy(image.transform, selected["row"].to_numpy(), selected["col"].to_numpy())
        self.samples = gpd.GeoDataFrame(
            {name: selected[name].to_numpy(), "originfid": selected["originfid"].to_numpy(np.int32)},
            geometry=gpd.points_from_xy(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)), crs=image.crs)

    def _write(self) -> None:
        write_vector(self.samples, self._required("out"), f"{self.name} out")
        rates = self._get("outrates")
        if rates:
            lines = ["#className requiredSamples totalSamples rate"]
            for label in sorted(self.totals, key=_label_order):
                required, total = self.required[label], self.totals[label]
                lines.append(f"{_label_text(label)}\t{required}\t{total}\t{required / total:g}")
            with atomic_output(rates) as tmp:
                Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


class SampleExtraction(_VectorApplication):
    """Image values at sample points (OTB's SampleExtraction): the input's fields plus one float field per band,
    ``<prefix>0`` .. (``outfield prefix``, ``value_`` by default) or the names of ``outfield.list.names``. Without
    ``out`` the input file is rewritten in place. Points outside the image are left out. Only windows holding
    points are read."""

    name = "SampleExtraction"
    PARAMETERS = {"in": Param("image", mandatory=True), "vec": Param("in_file", mandatory=True),
                  "out": Param("out_file"), "field": Param("string", mandatory=True), "layer": Param("int", 0),
                  "outfield": Param("choice", "prefix", ("prefix", "list")),
                  "outfield.prefix.name": Param("string", "value_"), "outfield.list.names": Param("strings"),
                  "ram": _RAM, **_ELEVATION}
    NOT_NATIVE = ("inxml", "outxml")

    def _prepare(self) -> None:
        import geopandas as gpd
        import pandas as pd

        image = self._image("in")
        path, frame = self._vector()
        _find_field(frame, self._required("field"), f"{self.name} field", path)
        if self._get("outfield") == "list":
            names = self.GetParameterStringList("outfield.list.names")
            if len(names) != image.count:
                raise ApplicationError(f"{self.name}: outfield.list.names gives {len(names)} name(s) for an image "
                                       f"of {image.count} band(s) ({image_name(image)}); give one name per band")
        else:
            names = [f"{self._get('outfield.prefix.name')}{band}" for band in range(image.count)]
        points = self._to_image_crs(frame, image)
        inverse = ~image.transform
        xs, ys = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
        cols_f, rows_f = inverse @ (xs, ys)
        cols, rows = np.floor(cols_f).astype(np.int64), np.floor(rows_f).astype(np.int64)
        inside = (cols >= 0) & (cols < image.width) & (rows >= 0) & (rows < image.height)
        rows, cols = rows[inside], cols[inside]
        values = np.empty((len(rows), image.count), dtype=np.float64)
        order = np.argsort(rows, kind="stable")
        step = _window_rows(image, self._get("ram"))
        start = 0
        while start < len(order):
            first_row = rows[order[start]]
            stop = np.searchsorted(rows[order], first_row + step, side="left")
            chunk = order[start:stop]
            col0, col1 = int(cols[chunk].min()), int(cols[chunk].max()) + 1
            row1 = int(rows[chunk].max()) + 1
            block = image.read(Window(col0, int(first_row), col1 - col0, row1 - int(first_row)))
            values[chunk] = block[:, rows[chunk] - first_row, cols[chunk] - col0].T
            start = stop
        kept = frame[inside].reset_index(drop=True)
        features = pd.DataFrame(values, columns=names)
        self.samples = gpd.GeoDataFrame(pd.concat([kept.drop(columns=kept.geometry.name), features], axis=1),
                                        geometry=kept.geometry.values, crs=frame.crs)

    def _write(self) -> None:
        out = self._get("out") or self._required("vec")
        write_vector(self.samples, out, f"{self.name} out")


APPLICATIONS: dict[str, type[NativeApplication]] = {
    app.name: app for app in (BandMath, BandMathX, ConcatenateImages, ExtractROI, Superimpose,
                              PolygonClassStatistics, SampleSelection, SampleExtraction)}
"""Native applications by OTB name."""
