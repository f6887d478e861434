"""The classic ``otbApplication`` Python API of OTB, over iota2's binding (``iota2 otb build``).

Scripts written for OTB's own module run with ``from iota2.plugins.otb_backend import otbApplication``::

    app = otbApplication.Registry.CreateApplication("BandMath")
    app.SetParameterStringList("il", ["image.tif"])
    app.SetParameterString("exp", "im1b1 + 3")
    app.Execute()                                   # in memory: the output can feed another application
    roi = otbApplication.Registry.CreateApplication("ExtractROI")
    roi.SetParameterInputImage("in", app.GetParameterOutputImage("out"))   # or roi.ConnectImage("in", app, "out")
    roi.SetParameterString("out", "roi.tif")
    roi.SetParameterOutputImagePixelType("out", otbApplication.ImagePixelType_int16)
    roi.ExecuteAndWriteOutput()

Numpy arrays go in with :meth:`Application.SetImageFromNumpyArray` (no georeferencing) or
:meth:`Application.ImportVectorImage` / :meth:`Application.ImportImage` (origin, spacing and projection WKT, or a
rasterio-style affine ``transform``), and come out with :meth:`Application.GetImageAsNumpyArray`,
:meth:`Application.GetVectorImageAsNumpyArray` and :meth:`Application.ExportImage`.

Each setter calls ``UpdateParameters()`` afterwards (OTB rejects choice values such as a ``field`` otherwise).
An unknown application or parameter key raises one error naming the valid ones; OTB's own errors raise
:class:`OtbError` with OTB's message. Importing this module loads the compiled binding; it raises
:class:`iota2.plugins.otb_backend.OtbUnavailableError` when OTB or the binding is missing.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys

import numpy as np

from iota2.core.errors import ConfigError
from iota2.plugins.otb_backend import INSTALL_COMMAND, OtbUnavailableError
from iota2.plugins.otb_backend import build as _build


def _load_binding():
    install = _build.find_otb()
    problems = [p for p in install.missing() if "headers" not in p]
    if problems:
        raise OtbUnavailableError(f"OTB is not usable: {'; '.join(problems)}; install it with {INSTALL_COMMAND}")
    path = _build.find_binding()
    if path is None:
        raise OtbUnavailableError(f"OTB {install.version} is installed but iota2's binding over it is not built for "
                                  f"this version of iota2 and Python (looked for {_build.binding_filename()} in "
                                  f"{', '.join(str(p) for p in _build.search_dirs())}); run iota2 otb build")
    os.environ.setdefault("OTB_LOGGER_LEVEL", "WARNING")  # OTB's INFO lines would flood the task logs
    name = f"{__package__}.{_build.MODULE}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise OtbUnavailableError(f"the OTB binding {path} cannot be loaded ({exc}); install OTB with "
                                  f"{INSTALL_COMMAND}") from exc
    sys.modules[name] = module
    module.set_application_path(install.applications_dir)
    # OTB's SetApplicationPath stores the path with putenv(OTB_APPLICATION_PATH=...), which os.environ does not
    # see; recording it there too keeps both views equal, so that code restoring os.environ later (a test's
    # monkeypatch, a subprocess environment) does not unset the path under OTB and leave it with no application.
    os.environ["OTB_APPLICATION_PATH"] = install.applications_dir
    return module


_otb = _load_binding()

#: OTB's errors (``itk::ExceptionObject``), with OTB's message; a ``RuntimeError``
OtbError = _otb.OtbError


class UnknownApplicationError(ConfigError, ValueError):
    """No OTB application of that name; the message lists the close (or all) valid names."""


class UnknownParameterError(ConfigError, ValueError):
    """The application has no parameter of that key; the message lists its keys."""


# ---------------------------------------------------------------------------------------------------------------------
# constants of OTB's API (same values as OTB's enums)
# ---------------------------------------------------------------------------------------------------------------------
_PARAMETER_TYPES = ("Int", "Float", "Double", "String", "StringList", "InputFilename", "InputFilenameList",
                    "OutputFilename", "Directory", "Choice", "InputImage", "InputImageList", "InputVectorData",
                    "InputVectorDataList", "OutputImage", "OutputVectorData", "Radius", "Group", "ListView", "RAM",
                    "OutputProcessXML", "InputProcessXML", "Bool", "Field", "Band")
for _index, _name in enumerate(_PARAMETER_TYPES):
    globals()[f"ParameterType_{_name}"] = _index
_PIXEL_TYPES = ("uint8", "int16", "uint16", "int32", "uint32", "float", "double", "cint16", "cint32", "cfloat",
                "cdouble")
for _index, _name in enumerate(_PIXEL_TYPES):
    globals()[f"ImagePixelType_{_name}"] = _index
Role_Input, Role_Output = 0, 1

_STRING_TYPES = {"String", "InputFilename", "OutputFilename", "Directory", "InputImage", "InputVectorData",
                 "OutputImage", "OutputVectorData", "Choice", "OutputProcessXML", "InputProcessXML"}
_LIST_TYPES = {"StringList", "InputFilenameList", "InputImageList", "InputVectorDataList", "ListView", "Field", "Band"}
_INT_TYPES = {"Int", "Radius", "RAM"}
_NUMPY_TYPES = {"uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
                "float": np.float32, "double": np.float64, "float32": np.float32, "float64": np.float64}


def _close(name: str, valid: list[str], what: str) -> str:
    close = difflib.get_close_matches(name, valid, n=5, cutoff=0.6)
    close += [v for v in valid if name.lower() in v.lower() and v not in close][:5 - len(close)]
    if close:
        return f"did you mean {', '.join(close)}? ({len(valid)} {what}: {', '.join(valid)})"
    return f"valid {what}: {', '.join(valid)}"


class Image:
    """An image passed between applications in memory: an application's output
    (:meth:`Application.GetParameterOutputImage`) or an imported numpy array. Keeps its producer alive."""

    def __init__(self, handle, owner=None):
        self._handle = handle
        self._owner = owner

    def ToNumpyArray(self) -> np.ndarray:
        """Compute the whole image and return it as a ``(rows, cols, bands)`` array."""
        return self._handle.to_array()

    def GetOrigin(self) -> tuple[float, float]:
        """Centre of the upper-left pixel (OTB / ITK origin)."""
        return tuple(self._handle.origin())

    def GetSignedSpacing(self) -> tuple[float, float]:
        """Pixel size, negative along y for north-up images."""
        return tuple(self._handle.spacing())

    def GetProjectionRef(self) -> str:
        """Projection WKT ('' when none)."""
        return self._handle.projection()

    def GetSize(self) -> tuple[int, int]:
        """``(columns, rows)``."""
        return tuple(self._handle.size())

    def GetNumberOfComponentsPerPixel(self) -> int:
        """Number of bands."""
        return int(self._handle.bands())


class Application:
    """One OTB application (made by :meth:`Registry.CreateApplication`)."""

    def __init__(self, handle):
        self._app = handle
        self._name = handle.name()
        self._keys = handle.keys(True)
        self._keep: list = []  # upstream applications and imported images this one reads in memory
        self._connected = False
        self._executed = False

    # ------------------------------------------------------------------ description
    def GetName(self) -> str:
        return self._name

    GetDocName = GetName

    def GetDescription(self) -> str:
        return self._app.description()

    def GetDocLongDescription(self) -> str:
        return self._app.long_description()

    def __str__(self) -> str:
        return f"{self._name}\n{self.GetDocLongDescription()}"

    def __repr__(self) -> str:
        return f"<otbApplication.Application {self._name}>"

    def GetParametersKeys(self, recursive: bool = True) -> list[str]:
        return list(self._keys) if recursive else self._app.keys(False)

    def _key(self, key: str) -> str:
        if key not in self._keys:
            self._keys = self._app.keys(True)
            if key not in self._keys:
                raise UnknownParameterError(f"OTB application {self._name} has no parameter {key!r}; "
                                            f"{_close(key, self._keys, 'parameter keys')}")
        return key

    def _type(self, key: str) -> str:
        return _PARAMETER_TYPES[self._app.parameter_type(self._key(key))]

    def GetParameterType(self, key: str) -> int:
        return self._app.parameter_type(self._key(key))

    def GetParameterTypeAsString(self, parameter_type: int) -> str:
        return f"ParameterType_{_PARAMETER_TYPES[parameter_type]}"

    def GetParameterName(self, key: str) -> str:
        return self._app.parameter_name(self._key(key))

    def GetParameterDescription(self, key: str) -> str:
        return self._app.parameter_description(self._key(key))

    def GetChoiceKeys(self, key: str) -> list[str]:
        return self._app.choice_keys(self._key(key))

    def HasValue(self, key: str) -> bool:
        return self._app.has_value(self._key(key))

    def IsMandatory(self, key: str) -> bool:
        return self._app.is_mandatory(self._key(key))

    def IsParameterEnabled(self, key: str) -> bool:
        return self._app.is_enabled(self._key(key))

    def GetParameterRole(self, key: str) -> int:
        return self._app.role(self._key(key))

    # ------------------------------------------------------------------ setters (each followed by UpdateParameters)
    def UpdateParameters(self) -> None:
        self._app.update_parameters()

    def SetParameterString(self, key: str, value) -> None:
        kind = self._type(key)
        if kind == "Bool":
            value = {"true": "1", "false": "0"}.get(str(value).lower(), str(value))
        if kind in _LIST_TYPES and not isinstance(value, str):
            self._app.set_string_list(key, [str(v) for v in value])
        else:
            self._app.set_string(key, str(value))
        self._app.update_parameters()

    def SetParameterStringList(self, key: str, values) -> None:
        if isinstance(values, str):
            values = [values]
        self._type(key)
        self._app.set_string_list(key, [str(v) for v in values])
        self._app.update_parameters()

    def SetParameterInt(self, key: str, value) -> None:
        kind = self._type(key)
        if kind == "Float":
            self._app.set_float(key, float(value))
        elif kind == "Double":
            self._app.set_double(key, float(value))
        elif kind in _INT_TYPES or kind == "Bool":
            self._app.set_int(key, int(value))
        else:
            self._app.set_string(key, str(value))
        self._app.update_parameters()

    def SetParameterFloat(self, key: str, value) -> None:
        kind = self._type(key)
        if kind == "Double":
            self._app.set_double(key, float(value))
        elif kind in _INT_TYPES:
            if float(value) != int(value):
                raise UnknownParameterError(f"OTB application {self._name}: parameter {key!r} takes an integer, "
                                            f"got {value!r}")
            self._app.set_int(key, int(value))
        elif kind == "Float":
            self._app.set_float(key, float(value))
        else:
            self._app.set_string(key, repr(float(value)))
        self._app.update_parameters()

    SetParameterDouble = SetParameterFloat

    def SetParameterValue(self, key: str, value) -> None:
        """Set a parameter of any type from a Python value (a path, a number, a list, a bool, an application or an
        :class:`Image` for image inputs)."""
        kind = self._type(key)
        if isinstance(value, (Application, Image)):
            self.SetParameterInputImage(key, value)
        elif kind in _LIST_TYPES:
            if isinstance(value, (list, tuple)) and any(isinstance(v, (Application, Image)) for v in value):
                for item in value:
                    if isinstance(item, (Application, Image)):
                        self.SetParameterInputImage(key, item)
                    else:
                        self.AddParameterStringList(key, str(item))
            else:
                self.SetParameterStringList(key, value if isinstance(value, (list, tuple)) else [value])
        elif kind in _INT_TYPES:
            self.SetParameterInt(key, value)
        elif kind in ("Float", "Double"):
            self.SetParameterFloat(key, value)
        elif kind == "Bool":
            self.SetParameterString(key, "1" if value in (True, 1, "1", "true", "True") else "0")
        else:
            self.SetParameterString(key, value)

    def SetParameters(self, parameters: dict) -> None:
        for key, value in parameters.items():
            self.SetParameterValue(key, value)

    def AddParameterStringList(self, key: str, value: str) -> None:
        """Append one value (a path) to a list parameter."""
        current = self._app.get_string_list(self._key(key)) if self._app.has_value(key) else []
        self._app.set_string_list(key, list(current) + [str(value)])
        self._app.update_parameters()

    def EnableParameter(self, key: str) -> None:
        self._app.enable(self._key(key))

    def ClearValue(self, key: str) -> None:
        self._app.clear_value(self._key(key))

    def SetParameterOutputImagePixelType(self, key: str, pixel_type) -> None:
        """Pixel type of a written output: an ``ImagePixelType_*`` constant or its name (``"uint8"``, ``"float"``)."""
        if isinstance(pixel_type, str):
            if pixel_type not in _PIXEL_TYPES:
                raise UnknownParameterError(f"OTB application {self._name}: unknown pixel type {pixel_type!r} for "
                                            f"{key!r}; valid: {', '.join(_PIXEL_TYPES)}")
            pixel_type = _PIXEL_TYPES.index(pixel_type)
        if self._type(key) != "OutputImage":
            raise UnknownParameterError(f"OTB application {self._name}: {key!r} is not an output image")
        self._app.set_output_pixel_type(key, int(pixel_type))

    # ------------------------------------------------------------------ images in memory
    def GetParameterOutputImage(self, key: str) -> Image:
        """The output image ``key``, computed lazily (call :meth:`Execute` first)."""
        if self._type(key) != "OutputImage":
            raise UnknownParameterError(f"OTB application {self._name}: {key!r} is not an output image")
        if not self._executed:
            raise OtbError(f"output image {key!r} of {self._name} is not computed yet: call Execute() first")
        return Image(self._app.output_image(key), owner=self)

    def SetParameterInputImage(self, key: str, image) -> None:
        """Feed an input image (or image list: the image is appended) with an :class:`Image` or with another
        application (its first output image, executed here when it was not)."""
        kind = self._type(key)
        if isinstance(image, Application):
            if not image._executed:
                image.Execute()
            outputs = [k for k in image.GetParametersKeys() if image._type(k) == "OutputImage"]
            if not outputs:
                raise UnknownParameterError(f"OTB application {image.GetName()} has no output image to feed "
                                            f"{self._name}.{key}")
            image = image.GetParameterOutputImage(outputs[0])
        if not isinstance(image, Image):
            raise TypeError(f"{self._name}.{key}: expected an Image or an Application, got {type(image).__name__}")
        if kind == "InputImageList":
            self._app.add_input_image(key, image._handle)
        elif kind == "InputImage":
            self._app.set_input_image(key, image._handle)
        else:
            raise UnknownParameterError(f"OTB application {self._name}: {key!r} is not an input image "
                                        f"(it is a {kind} parameter)")
        self._keep.append(image)
        self._app.update_parameters()

    AddImageToParameterInputImageList = SetParameterInputImage

    def ConnectImage(self, key: str, application: Application, out: str) -> bool:
        """Connect the output ``out`` of ``application`` to this application's input ``key`` (an image or image
        list) in memory; the upstream application runs when this one does."""
        if self._type(key) not in ("InputImage", "InputImageList"):
            raise UnknownParameterError(f"OTB application {self._name}: {key!r} is not an input image")
        if application._type(out) != "OutputImage":
            raise UnknownParameterError(f"OTB application {application.GetName()}: {out!r} is not an output image")
        connected = self._app.connect_image(key, application._app, out)
        if not connected:
            raise OtbError(f"could not connect {application.GetName()}.{out} to {self._name}.{key}")
        self._keep.append(application)
        self._connected = True
        self._app.update_parameters()
        return True

    def _array_in(self, key: str, array: np.ndarray, origin, spacing, projection: str) -> None:
        kind = self._type(key)
        if kind not in ("InputImage", "InputImageList"):
            raise UnknownParameterError(f"OTB application {self._name}: {key!r} is not an input image")
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f"{self._name}.{key}: expected a (rows, cols) or (rows, cols, bands) array, got shape "
                             f"{array.shape}")
        if array.dtype == np.bool_ or array.dtype == np.int8:
            array = array.astype(np.int16 if array.dtype == np.int8 else np.uint8)
        elif array.dtype.kind in "iu" and array.dtype.itemsize == 8:
            array = array.astype(np.float64)
        elif array.dtype == np.float16:
            array = array.astype(np.float32)
        handle = _otb.import_array(np.ascontiguousarray(array), [float(v) for v in origin],
                                   [float(v) for v in spacing], projection or "")
        image = Image(handle)
        if kind == "InputImageList":
            self._app.add_input_image(key, handle)
        else:
            self._app.set_input_image(key, handle)
        self._keep.append(image)
        self._app.update_parameters()

    def SetImageFromNumpyArray(self, key: str, array: np.ndarray) -> None:
        """A ``(rows, cols)`` array as input image ``key`` (no georeferencing: origin (0.5, 0.5), spacing 1)."""
        self._array_in(key, array, (0.5, 0.5), (1.0, 1.0), "")

    SetVectorImageFromNumpyArray = SetImageFromNumpyArray

    def ImportVectorImage(self, key: str, array, origin=None, spacing=None, projection: str | None = None,
                          transform=None) -> None:
        """A numpy array (``(rows, cols)`` or ``(rows, cols, bands)``) as input image ``key``, georeferenced.

        Parameters
        ----------
        key
            An input image (or image list) parameter.
        array
            The pixels; or a dict as OTB's ``ExportImage`` gives (``array``, ``origin``, ``spacing`` and here
            ``projection``), as in OTB's ``ImportVectorImage(key, dict)``.
        origin
            Centre of the upper-left pixel ``(x, y)`` (OTB's convention); default ``(0.5, 0.5)``.
        spacing
            Signed pixel size ``(x, y)``, negative y for north-up images; default ``(1, 1)``.
        projection
            Projection WKT (e.g. ``rasterio.crs.CRS.to_wkt()``).
        transform
            Instead of ``origin`` and ``spacing``: a north-up affine transform (rasterio's ``transform``, or its six
            GDAL numbers ``(c, a, b, f, d, e)``).
        """
        if isinstance(array, dict):
            info = array
            array = info["array"]
            origin = info.get("origin", origin)
            spacing = info.get("spacing", spacing)
            projection = info.get("projection", projection)
        if transform is not None:
            if hasattr(transform, "to_gdal"):
                transform = transform.to_gdal()
            c, a, b, f, d, e = transform
            if b or d:
                raise ValueError(f"{self._name}.{key}: rotated transforms are not supported ({transform})")
            origin, spacing = (c + a / 2, f + e / 2), (a, e)
        self._array_in(key, array, origin if origin is not None else (0.5, 0.5),
                       spacing if spacing is not None else (1.0, 1.0), projection or "")

    ImportImage = ImportVectorImage

    def _array_out(self, key: str, dtype) -> np.ndarray:
        array = self.GetParameterOutputImage(key).ToNumpyArray()
        if dtype is not None:
            array = array.astype(_NUMPY_TYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype, copy=False)
        return array

    def GetVectorImageAsNumpyArray(self, key: str, dtype=None) -> np.ndarray:
        """The whole output image ``key`` as ``(rows, cols, bands)`` (in its own pixel type unless ``dtype``)."""
        return self._array_out(key, dtype)

    def GetImageAsNumpyArray(self, key: str, dtype=None) -> np.ndarray:
        """The first band of output image ``key`` as ``(rows, cols)``, as OTB's ``GetImageAsNumpyArray`` (use
        :meth:`GetVectorImageAsNumpyArray` for every band)."""
        return self._array_out(key, dtype)[:, :, 0]

    def ExportImage(self, key: str) -> dict:
        """The output image ``key`` as a dict: ``array`` (rows, cols, bands), ``origin``, ``spacing``, ``size``
        (cols, rows) and ``projection`` (WKT); :meth:`ImportVectorImage` accepts it."""
        image = self.GetParameterOutputImage(key)
        return {"array": image.ToNumpyArray(), "origin": image.GetOrigin(), "spacing": image.GetSignedSpacing(),
                "size": image.GetSize(), "projection": image.GetProjectionRef()}

    # ------------------------------------------------------------------ execution
    def Execute(self) -> int:
        """Set up the application's pipeline in memory (outputs are computed when read or written downstream)."""
        if self._connected:
            self._app.propagate_connect_mode(True)
        status = self._app.execute()
        self._executed = True
        return status

    def ExecuteAndWriteOutput(self) -> int:
        """Run the application and write its file outputs."""
        if self._connected:
            self._app.propagate_connect_mode(True)
        status = self._app.execute_and_write_output()
        self._executed = True
        return status

    # ------------------------------------------------------------------ getters
    def GetParameterString(self, key: str) -> str:
        kind = self._type(key)
        return self._app.get_string(key) if kind in _STRING_TYPES else self._app.get_as_string(key)

    def GetParameterAsString(self, key: str) -> str:
        return self._app.get_as_string(self._key(key))

    def GetParameterStringList(self, key: str) -> list[str]:
        self._key(key)
        return self._app.get_string_list(key)

    def GetParameterInt(self, key: str) -> int:
        kind = self._type(key)
        return int(self._app.get_double(key) if kind == "Double" else
                   self._app.get_float(key) if kind == "Float" else self._app.get_int(key))

    def GetParameterFloat(self, key: str) -> float:
        kind = self._type(key)
        return float(self._app.get_double(key) if kind == "Double" else
                     self._app.get_int(key) if kind in _INT_TYPES else self._app.get_float(key))

    GetParameterDouble = GetParameterFloat

    def GetParameterValue(self, key: str):
        """The value of any parameter, typed as OTB's ``GetParameterValue``."""
        kind = self._type(key)
        if kind in _LIST_TYPES:
            return self._app.get_string_list(key)
        if kind in _INT_TYPES:
            return self._app.get_int(key)
        if kind == "Bool":
            return bool(self._app.get_int(key))
        if kind in ("Float", "Double"):
            return self.GetParameterFloat(key)
        if kind == "Group":
            return None
        return self.GetParameterString(key)

    def GetParameters(self) -> dict:
        """``{key: value}`` of the input parameters that have a value and are enabled."""
        return {key: self.GetParameterValue(key) for key in self._keys
                if self._app.has_value(key) and self._app.is_enabled(key) and self._app.role(key) == Role_Input
                and _PARAMETER_TYPES[self._app.parameter_type(key)] not in ("Group",)}


class Registry:
    """OTB's application registry."""

    @staticmethod
    def GetAvailableApplications() -> list[str]:
        return sorted(_otb.available_applications())

    @staticmethod
    def CreateApplication(name: str) -> Application:
        """A new application; an unknown name raises :class:`UnknownApplicationError` naming the valid ones."""
        available = Registry.GetAvailableApplications()
        if name not in available:
            raise UnknownApplicationError(f"unknown OTB application {name!r}; "
                                          f"{_close(name, available, 'applications')}")
        return Application(_otb.create_application(name))

    @staticmethod
    def GetApplicationPath() -> str:
        return _otb.get_application_path()


def set_threads(threads: int) -> None:
    """ITK's default number of threads of the filters created afterwards (every application of this process)."""
    _otb.set_threads(max(1, int(threads)))


def seed_random(seed: int) -> None:
    """Seed the C library's random generator and this thread's OpenCV one, which OTB's ``-rand`` leaves alone
    (libsvm's probability estimates and OpenCV's random forest draw from them); call it in the thread that runs the
    training, right before."""
    _otb.seed_random(int(seed))


def get_threads() -> int:
    return int(_otb.get_threads())
