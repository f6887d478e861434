"""OTB-style applications for scripts (labwork section 6): one factory per OTB application, as in iota2.

Each factory takes a dict keyed by OTB parameter names and returns a configured application, not executed::

    from iota2.common import otb_app_bank as otb

    band_math = otb.CreateBandMathApplication({"il": ["band.tif"], "exp": "im1b1 + 3"})
    roi = otb.CreateExtractROIApplication({"in": band_math, "out": "roi.tif", "mode": "fit",
                                           "mode.fit.vect": "area.shp"})
    roi.ExecuteAndWriteOutput()          # or Execute(), then roi.GetImageAsNumpyArray("out")

An image input may be a path, another application (an in-memory pipeline), an ``(application, dependencies)``
tuple as some factories and a sensor's ``get_features`` return, or any :class:`~iota2.common.images.InMemoryImage`.
``pixType`` (``"uint8"``, ``"int16"``, ... ``"float"``) sets the pixel type of ``out``.

Backend: real OTB applications (through :mod:`iota2.plugins.otb_backend`) when OTB and its binding are installed,
the native applications of :mod:`iota2.common.native_apps` otherwise. ``IOTA2_OTB_APPS=native|otb|auto`` (default
``auto``) or :func:`set_backend` choose; :func:`backend` says which is used. A native image given to a real OTB
application goes through a temporary GeoTIFF, removed when the application is garbage collected.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import Any

from iota2.common.images import InMemoryImage
from iota2.common.native_apps import (APPLICATIONS, PIXEL_TYPES, ApplicationError, ArrayImage, NativeApplication,
                                      RasterFile, pixel_type, write_image)
from iota2.core.errors import InputDataError, PluginError

BACKENDS = ("auto", "native", "otb")
ENVIRONMENT = "IOTA2_OTB_APPS"
INSTALL_HINT = ("install OTB and build iota2's binding: apt-get install otb-bin libotb-dev, then iota2 otb build; "
                f"or use the native applications ({ENVIRONMENT}=native)")

#: ``otbApplication.ImagePixelType_*`` codes, for scripts that pass them.
ImagePixelType_uint8, ImagePixelType_int16, ImagePixelType_uint16, ImagePixelType_int32, \
    ImagePixelType_uint32, ImagePixelType_float, ImagePixelType_double = range(7)

_chosen: str | None = None


class OtbAppsUnavailableError(PluginError):
    """Real OTB applications were asked for and OTB (or iota2's binding of it) is not installed."""


def set_backend(name: str | None) -> None:
    """Choose the applications the factories return: ``"otb"``, ``"native"``, ``"auto"``; ``None`` goes back to
    ``$IOTA2_OTB_APPS``."""
    global _chosen
    if name is not None and name not in BACKENDS:
        raise ApplicationError(f"set_backend({name!r}): use one of {', '.join(BACKENDS)}")
    _chosen = name


def _requested() -> str:
    name = _chosen or os.environ.get(ENVIRONMENT, "auto").strip().lower() or "auto"
    if name not in BACKENDS:
        raise ApplicationError(f"{ENVIRONMENT}={name!r} is not allowed; use one of {', '.join(BACKENDS)}")
    return name


def _otb_module():
    """The loaded ``otbApplication``-like module, or the reason it cannot be loaded."""
    try:
        from iota2.plugins import otb_backend
    except ImportError as exc:  # pragma: no cover - the package ships with iota2
        return None, str(exc)
    available = getattr(otb_backend, "otb_available", None)
    load = getattr(otb_backend, "load_otb", None)
    if load is None:
        return None, "this iota2 has no OTB binding (iota2.plugins.otb_backend.load_otb)"
    try:
        if available is not None and not available():
            return None, "OTB or iota2's binding of it is not installed"
        return load(), None
    except Exception as exc:  # noqa: BLE001 - OtbUnavailableError and whatever a broken install raises
        return None, str(exc)


def backend() -> str:
    """The applications the factories return now: ``"otb"`` or ``"native"``.

    Raises
    ------
    OtbAppsUnavailableError
        ``otb`` was asked for (``IOTA2_OTB_APPS=otb`` or :func:`set_backend`) and OTB cannot be loaded.
    """
    requested = _requested()
    if requested == "native":
        return "native"
    module, reason = _otb_module()
    if module is not None:
        return "otb"
    if requested == "otb":
        raise OtbAppsUnavailableError(f"OTB applications were asked for ({ENVIRONMENT}=otb) but {reason}; "
                                      f"{INSTALL_HINT}")
    return "native"


# ---------------------------------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------------------------------

def _unpack(value: Any) -> Any:
    """``(application, dependencies)`` -> application, as iota2's factories accept."""
    while isinstance(value, tuple) and value:
        value = value[0]
    return value


def _is_otb_application(value: Any) -> bool:
    return not isinstance(value, NativeApplication) and hasattr(value, "GetParameterOutputImage") \
        and hasattr(value, "ExecuteAndWriteOutput")


class OtbApplicationImage(InMemoryImage):
    """The output image of a real OTB application read by a native one (computed once, kept in memory)."""

    def __init__(self, application, key: str = "out"):
        self.application, self.key = application, key
        self._image: ArrayImage | None = None

    def _load(self) -> ArrayImage:
        if self._image is None:
            import rasterio.crs
            from affine import Affine

            self.application.Execute()
            array = self.application.GetVectorImageAsNumpyArray(self.key)
            origin = self.application.GetImageOrigin(self.key)
            spacing = self.application.GetImageSpacing(self.key)
            projection = self.application.GetImageProjection(self.key)
            transform = Affine(spacing[0], 0, origin[0] - spacing[0] / 2, 0, spacing[1], origin[1] - spacing[1] / 2)
            crs = rasterio.crs.CRS.from_wkt(projection) if projection else None
            self._image = ArrayImage(array.transpose(2, 0, 1) if array.ndim == 3 else array, crs, transform)
        return self._image

    def __getattribute__(self, name):
        if name in ("crs", "transform", "width", "height", "count", "dtype", "nodata", "band_names"):
            return getattr(self._load(), name)
        return super().__getattribute__(name)

    def read(self, window=None):
        return self._load().read(window)


def as_image(value: Any, where: str) -> InMemoryImage:
    """An image input of a native application: a path, an application (native or OTB), an ``(app, deps)`` tuple
    or an :class:`InMemoryImage`.

    Raises
    ------
    InputDataError
        A path that does not exist or is not a raster.
    ApplicationError
        Anything else.
    """
    value = _unpack(value)
    if isinstance(value, NativeApplication):
        value.ensure_executed()
        if value.OUTPUT_IMAGE is None:
            raise ApplicationError(f"{where}: {value.name} has no output image")
        return value
    if isinstance(value, InMemoryImage):
        return value
    if isinstance(value, (str, os.PathLike)):
        return RasterFile(value, where)
    if _is_otb_application(value):
        return OtbApplicationImage(value)
    raise ApplicationError(f"{where}: {type(value).__name__} is not an image; give a path, an application or an "
                           "InMemoryImage")


def read_vector(path: Any, where: str, layer: Any = None):
    """A vector file as a GeoDataFrame indexed by its FIDs (as OTB numbers features)."""
    import pyogrio

    path = str(path)
    if not os.path.exists(path):
        raise InputDataError(f"{where}: the vector file '{path}' does not exist; give the path of a vector file "
                             "(.shp, .sqlite, .gpkg)")
    try:
        kwargs = {"layer": layer} if layer not in (None, 0, "0") else {}
        return pyogrio.read_dataframe(path, fid_as_index=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several DataSource/DataLayer errors
        raise InputDataError(f"{where}: cannot read the vector file '{path}' ({exc})") from exc


# ---------------------------------------------------------------------------------------------------------------------
# real OTB applications
# ---------------------------------------------------------------------------------------------------------------------

_KEEP_ALIVE: dict[int, list] = {}


def _bridge(application, image: InMemoryImage) -> str:
    """A temporary GeoTIFF of a native image for a real OTB application; removed with the application."""
    folder = tempfile.mkdtemp(prefix="iota2_otb_bridge_")
    path = os.path.join(folder, "image.tif")
    write_image(image, path, "float32")

    def cleanup(folder=folder):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)

    try:
        weakref.finalize(application, cleanup)
    except TypeError:  # objects without weak references: removed at exit
        import atexit

        atexit.register(cleanup)
    return path


def _otb_set(application, app_name: str, key: str, value: Any, image_keys: set[str], list_keys: set[str]) -> None:
    keys = set(application.GetParametersKeys())
    if key not in keys:
        raise ApplicationError(f"{app_name} has no parameter '{key}'; its parameters are: "
                               f"{', '.join(sorted(keys))}")
    if key in image_keys:
        values = value if key in list_keys and isinstance(value, list) else [value]
        paths, images = [], []
        for item in (_unpack(item) for item in values):
            if isinstance(item, (str, os.PathLike)):
                paths.append(str(item))
            elif _is_otb_application(item):
                images.append(item)
            else:
                paths.append(_bridge(application, as_image(item, f"{app_name} parameter '{key}'")))
        _KEEP_ALIVE.setdefault(id(application), []).extend(images)
        if paths and key in list_keys:
            application.SetParameterStringList(key, paths)
        elif paths:
            application.SetParameterString(key, paths[0])
        for upstream in images:
            out = "out" if "out" in upstream.GetParametersKeys() else "io.out"
            if key in list_keys:
                application.AddImageToParameterInputImageList(key, upstream.GetParameterOutputImage(out))
            else:
                application.SetParameterInputImage(key, upstream.GetParameterOutputImage(out))
    elif isinstance(value, (list, tuple)):
        application.SetParameterStringList(key, [str(item) for item in value])
    else:
        application.SetParameterString(key, str(value))
    if hasattr(application, "UpdateParameters"):
        application.UpdateParameters()


class DeferredOtbApplication:
    """A real OTB application whose input file does not exist yet when it is configured (a sample file that another
    application of the script writes first, as labwork 6.3 configures SampleExtraction before SampleSelection
    runs): OTB opens such a file as soon as the parameter is set, so that parameter and the ones after it are set
    when the application is executed. Everything else goes to the OTB application."""

    def __init__(self, application, app_name: str, pending: list[tuple[str, Any]], image_keys: set[str],
                 list_keys: set[str]):
        self._application, self._app_name, self._pending = application, app_name, pending
        self._keys = image_keys, list_keys

    def _apply_pending(self) -> None:
        pending, self._pending = self._pending, []
        for key, value in pending:
            if key == "pixType":
                _set_pixel_type(self._application, self._app_name, value)
            else:
                _otb_set(self._application, self._app_name, key, value, *self._keys)

    def Execute(self):  # noqa: N802 - OTB's name
        self._apply_pending()
        return self._application.Execute()

    def ExecuteAndWriteOutput(self):  # noqa: N802 - OTB's name
        self._apply_pending()
        return self._application.ExecuteAndWriteOutput()

    def __getattr__(self, name: str):
        return getattr(self._application, name)


def _missing_input_file(key: str, value: Any) -> bool:
    """Whether ``value`` names an input file that does not exist (yet)."""
    return (isinstance(value, (str, os.PathLike)) and key not in ("out", "io.out") and bool(str(value))
            and os.path.splitext(str(value))[1] != "" and not os.path.exists(value))


def _set_pixel_type(application, app_name: str, pixel) -> None:
    code = list(PIXEL_TYPES.values()).index(pixel_type(pixel, f"{app_name} pixType"))
    application.SetParameterOutputImagePixelType("out", code)


def _create_otb(name: str, parameters: dict, image_keys: set[str], list_keys: set[str]):
    module, reason = _otb_module()
    if module is None:  # pragma: no cover - backend() said otb
        raise OtbAppsUnavailableError(f"{name}: {reason}; {INSTALL_HINT}")
    application = module.Registry.CreateApplication(name)
    if application is None:
        raise ApplicationError(f"OTB has no application '{name}'")
    pixel = parameters.pop("pixType", None)
    items = list(parameters.items())
    for position, (key, value) in enumerate(items):
        try:
            _otb_set(application, name, key, value, image_keys, list_keys)
        except ApplicationError:
            raise
        except Exception:  # noqa: BLE001 - OTB could not open an input: defer it if a script writes it later
            if not _missing_input_file(key, value):
                raise
            pending = items[position:] + ([("pixType", pixel)] if pixel is not None else [])
            return DeferredOtbApplication(application, name, pending, image_keys, list_keys)
    if pixel is not None:
        _set_pixel_type(application, name, pixel)
    return application


# ---------------------------------------------------------------------------------------------------------------------
# factories
# ---------------------------------------------------------------------------------------------------------------------

_IMAGE_KEYS = {"in", "il", "inr", "inm", "mask", "mode.fit.im", "ref.raster.in"}
_LIST_KEYS = {"il"}


def create_application(name: str, parameters: dict | None = None):
    """A configured (not executed) application of either backend, from OTB parameter names.

    Parameters
    ----------
    name
        OTB application name (``"BandMath"``).
    parameters
        ``{"il": [...], "exp": "im1b1 + 3", "pixType": "uint8", ...}``.

    Raises
    ------
    ApplicationError
        Unknown application or parameter (the message lists the valid ones), or a bad value.
    """
    parameters = dict(parameters or {})
    if backend() == "otb":
        return _create_otb(name, parameters, _IMAGE_KEYS, _LIST_KEYS)
    if name not in APPLICATIONS:
        raise ApplicationError(f"the native backend has no application '{name}'; native applications are "
                               f"{', '.join(sorted(APPLICATIONS))} (others need OTB: {INSTALL_HINT.split('; or')[0]})")
    application = APPLICATIONS[name]()
    pixel = parameters.pop("pixType", None)
    for key, value in parameters.items():
        if key in _IMAGE_KEYS and application._param(key).kind == "images":
            values = value if isinstance(value, list) else [value]
            application.SetParameterValue(key, values)
        else:
            application.SetParameterValue(key, value)
    if pixel is not None:
        application.SetParameterOutputImagePixelType("out", pixel)
    return application


def _native_only(name: str):
    raise ApplicationError(f"{name} is not one of the native applications; {INSTALL_HINT.split('; or')[0]}")


def CreateBandMathApplication(OtbParameters: dict):  # noqa: N802,N803 - iota2's names
    """BandMath: ``il`` (images), ``exp`` (``"im1b1 + 3"``), ``out``, ``ram``, ``pixType``."""
    return create_application("BandMath", OtbParameters)


def CreateBandMathXApplication(OtbParameters: dict):  # noqa: N802,N803
    """BandMathX: ``il``, ``exp`` (``;``-separated expressions, one band each), ``out``, ``ram``, ``pixType``."""
    return create_application("BandMathX", OtbParameters)


def CreateExtractROIApplication(OtbParameters: dict):  # noqa: N802,N803
    """ExtractROI: ``in``, ``out``, ``mode`` (standard: ``startx starty sizex sizey``; fit: ``mode.fit.vect`` or
    ``mode.fit.im``), ``cl`` (``["Channel1", ...]``), ``ram``, ``pixType``."""
    return create_application("ExtractROI", OtbParameters)


def CreateSuperimposeApplication(OtbParameters: dict):  # noqa: N802,N803
    """Superimpose: ``inr`` (reference grid), ``inm`` (image to resample), ``out``, ``interpolator`` (nn, linear,
    bco), ``fv``, ``ram``, ``pixType``. Returns ``(application, inm)`` as iota2 did."""
    return create_application("Superimpose", OtbParameters), OtbParameters.get("inm")


def CreateConcatenateImagesApplication(OtbParameters: dict):  # noqa: N802,N803
    """ConcatenateImages: ``il``, ``out``, ``ram``, ``pixType``."""
    return create_application("ConcatenateImages", OtbParameters)


def CreatePolygonClassStatisticsApplication(OtbParameters: dict):  # noqa: N802,N803
    """PolygonClassStatistics: ``in``, ``vec``, ``field``, ``out`` (XML), ``mask``, ``ram``."""
    return create_application("PolygonClassStatistics", OtbParameters)


def CreateSampleSelectionApplication(OtbParameters: dict):  # noqa: N802,N803
    """SampleSelection: ``in``, ``vec``, ``instats``, ``field``, ``out``, ``strategy`` (+ options), ``sampler``,
    ``rand``, ``outrates``, ``mask``, ``ram``."""
    return create_application("SampleSelection", OtbParameters)


def CreateSampleExtractionApplication(OtbParameters: dict):  # noqa: N802,N803
    """SampleExtraction: ``in``, ``vec``, ``field``, ``out``, ``outfield`` (prefix: ``outfield.prefix.name``;
    list: ``outfield.list.names``), ``ram``."""
    return create_application("SampleExtraction", OtbParameters)


def CreateImageClassifierApplication(OtbParameters: dict):  # noqa: N802,N803
    """ImageClassifier (OTB only): ``in``, ``model``, ``imstat``, ``out``, ``confmap``, ``mask``, ``ram``."""
    if backend() != "otb":
        _native_only("ImageClassifier")
    return create_application("ImageClassifier", OtbParameters)


def CreateComputeConfusionMatrixApplication(OtbParameters: dict):  # noqa: N802,N803
    """ComputeConfusionMatrix (OTB only): ``in``, ``out``, ``ref`` (vector / raster), ``ref.vector.in``,
    ``ref.vector.field``, ``nodatalabel``, ``ram``."""
    if backend() != "otb":
        _native_only("ComputeConfusionMatrix")
    return create_application("ComputeConfusionMatrix", OtbParameters)


def CreateTrainVectorClassifierApplication(OtbParameters: dict):  # noqa: N802,N803
    """TrainVectorClassifier (OTB only): ``io.vd``, ``io.out``, ``cfield``, ``feat``, ``classifier`` ..."""
    if backend() != "otb":
        _native_only("TrainVectorClassifier")
    return create_application("TrainVectorClassifier", OtbParameters)


def native_applications() -> list[str]:
    """Names of the applications the native backend implements."""
    return sorted(APPLICATIONS)


__all__ = ["BACKENDS", "ENVIRONMENT", "OtbAppsUnavailableError", "as_image", "backend", "create_application",
           "native_applications", "read_vector", "set_backend"] + [
    name for name in dir() if name.startswith("Create")]
