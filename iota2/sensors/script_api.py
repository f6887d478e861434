"""iota2's script API of the sensors: ``sentinel_2(**parameters).get_features(ram=1024)``.

iota2's sensor classes (``sentinel_2``, ``sentinel_2_s2c``, ``sentinel_2_l3a``, ``landsat_8``) are built from
keyword arguments, usually those of
:meth:`iota2.configuration_files.read_config_file.iota2_parameters.get_sensors_parameters`, and give the features
the chain computes for a tile::

    from iota2.configuration_files import read_config_file as rcf
    from iota2.sensors.Sentinel_2 import sentinel_2

    parameters = rcf.iota2_parameters("config.cfg").get_sensors_parameters("T31TCJ")
    (pipeline, dependencies), labels = sentinel_2(**parameters["Sentinel_2"]).get_features(ram=1024)
    block = pipeline.read(rasterio.windows.Window(0, 0, 100, 100))   # (len(labels), 100, 100) float32

``pipeline`` is an :class:`iota2.common.images.InMemoryImage` over the tile's grid: a window read reads that
window of the tile's products only, gap-fills it and computes its features with the feature stage of the chain
(:func:`iota2.core.features.read_features`), so the values and labels are the chain's (``sentinel2_b2_20180511``,
``sentinel2_ndvi_20180511`` ..., reflectances x 10000 and indices x 1000, ``-10000`` outside the sensor's
footprint), and a whole tile never has to fit in memory. The feature functions of ``external_features`` are not
applied: they belong to the chain's feature stage, not to a sensor.

A sensor alone is on its own grid: the tile's grid in ``target_proj`` (default: the CRS of the first of
``all_tiles``) at ``working_resolution`` (default: native). In a chain with several sensors, the finest one's grid
is every sensor's; give that sensor's resolution as ``working_resolution`` to get the same grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.common.images import InMemoryImage
from iota2.core.errors import ConfigError
from iota2.core.features import NODATA, read_features
from iota2.core.raster import Grid

#: iota2's keyword arguments of a sensor constructor and the configuration key each stands for; ``<sensor>`` is the
#: sensor's own section, ``chain.<path>`` its product folder key and ``chain.<output>`` its ``*_output_path`` key
KEYWORDS: dict[str, tuple[str, str]] = {
    "image_directory": ("chain", "<path>"),
    "output_target_dir": ("chain", "<output>"),
    "target_proj": ("chain", "proj"),
    "working_resolution": ("chain", "spatial_resolution"),
    "i2_output_path": ("chain", "output_path"),
    "temporal_res": ("<sensor>", "temporal_resolution"),
    "date_interp_min_user": ("<sensor>", "start_date"),
    "date_interp_max_user": ("<sensor>", "end_date"),
    "keep_bands": ("<sensor>", "keep_bands"),
    "hand_features": ("<sensor>", "additional_features"),
    "write_dates_stack": ("<sensor>", "write_reproject_resampled_input_dates_stack"),
    "auto_date_flag": ("sensors_data_interpolation", "auto_date"),
    "enable_gapfilling": ("sensors_data_interpolation", "use_gapfilling"),
    "write_outputs_flag": ("sensors_data_interpolation", "write_outputs"),
    "hand_features_flag": ("sensors_data_interpolation", "use_additional_features"),
    "features": ("arg_train", "features"),
    "copy_input": ("iota2_feature_extraction", "copy_input"),
    "rel_refl": ("iota2_feature_extraction", "rel_refl"),
    "keep_dupl": ("iota2_feature_extraction", "keep_duplicates"),
    "acorfeat": ("iota2_feature_extraction", "acor_feat"),
    "extract_bands_flag": ("iota2_feature_extraction", "extract_bands"),
}

SCRIPT_CLASSES: dict[str, type[ScriptSensor]] = {}
"""Script class of each sensor, by configuration section (filled by the subclasses of :class:`ScriptSensor`)."""


def _section_keys(sensor_class) -> tuple[str, str, str]:
    path_key = sensor_class.path_key
    output_key = path_key[:-len("_path")] + "_output_path" if path_key.endswith("_path") else ""
    return sensor_class.config_section, path_key, output_key


def _where(sensor_class, section: str, key: str) -> tuple[str, str]:
    own, path_key, output_key = _section_keys(sensor_class)
    section = own if section == "<sensor>" else section
    key = {"<path>": path_key, "<output>": output_key}.get(key, key)
    return section, key


def sensor_parameters(config, sensor_class, tile: str) -> dict[str, Any]:
    """Keyword arguments of ``sensor_class``'s script constructor for ``tile`` from a validated configuration.

    iota2's names (:data:`KEYWORDS`) for the keys they stand for, and the other keys of the sensor's section under
    their own names; ``tile_name`` and ``all_tiles`` (``chain.list_tile``, space-separated) besides.
    """
    own, _, _ = _section_keys(sensor_class)
    parameters: dict[str, Any] = {"tile_name": tile, "all_tiles": " ".join(config["chain"]["list_tile"])}
    used: set[tuple[str, str]] = set()
    for name, (section, key) in KEYWORDS.items():
        section, key = _where(sensor_class, section, key)
        if section in config and key in config[section]:
            parameters[name] = config[section][key]
            used.add((section, key))
    for key, value in config[own].items() if own in config else ():
        if (own, key) not in used:
            parameters[key] = value
    return parameters


class SensorFeatures(InMemoryImage):
    """The features of one sensor on one tile, computed window by window when read (see the module's text).

    Attributes
    ----------
    grid
        The tile's :class:`iota2.core.raster.Grid`.
    dates
        The interpolation dates ``YYYYMMDD``.
    bytes_per_pixel
        Estimated memory of a read, per pixel.
    ram
        Memory budget (MB) of one read: :meth:`block_windows` cuts the grid to fit it.
    """

    dtype = "float32"
    nodata = float(NODATA)

    def __init__(self, config, tile: str, sensor_class, grid: Grid, dates: list[str], ram: float):
        self._config, self._tile, self._sensor_class = config, tile, sensor_class
        self.grid, self.dates, self.ram = grid, list(dates), float(ram)
        self.crs, self.transform, self.width, self.height = grid.crs, grid.transform, grid.width, grid.height
        self.bytes_per_pixel = sensor_class(config, tile).bytes_per_pixel(len(self.dates))
        self.band_names = self._read(Window(0, 0, 1, 1)).labels
        self.count = len(self.band_names)

    def _read(self, window: Window):
        return read_features(self._config, self._tile, self.grid, window, {self._sensor_class.config_section:
                                                                          self.dates}, [self._sensor_class])

    def read(self, window: Window | None = None) -> np.ndarray:
        """Features of ``window`` (the whole tile when ``None``): ``(count, rows, cols)`` float32, ``nodata``
        outside the sensor's footprint. Only that window of the products is read."""
        window = Window(0, 0, self.width, self.height) if window is None else window
        col, row, width, height = (int(value) for value in (window.col_off, window.row_off, window.width,
                                                              window.height))
        if width < 1 or height < 1 or col < 0 or row < 0 or col + width > self.width or row + height > self.height:
            raise ValueError(f"window (col {col}, row {row}, {width} x {height}) is not inside the {self.width} x "
                             f"{self.height} grid of tile {self._tile}")
        block = self._read(Window(col, row, width, height))
        features = block.features
        features[~block.footprint] = NODATA
        return np.ascontiguousarray(features.transpose(2, 0, 1))

    def block_windows(self, max_pixels: int | None = None) -> Iterator[Window]:
        """Windows of whole rows covering the grid; by default as large as ``ram`` MB allows."""
        if max_pixels is None:
            max_pixels = max(1, int(self.ram * 1024 * 1024 // max(1, self.bytes_per_pixel)))
        return super().block_windows(max_pixels)


class ScriptSensor:
    """Base of iota2's script sensor classes (``sentinel_2`` ...): a sensor of one tile built from keywords.

    Parameters
    ----------
    tile_name
        The tile, e.g. ``"T31TCJ"``.
    all_tiles
        Every tile of the run (a space-separated string or a list): the interpolation dates span their
        acquisitions, as in the chain (``sensors_data_interpolation.auto_date``). Default: ``tile_name``.
    **parameters
        iota2's keyword names (``image_directory``, ``target_proj``, ``temporal_res``, ``auto_date_flag``,
        ``features`` ... : :data:`KEYWORDS`) or the keys of the sensor's configuration section
        (``temporal_resolution`` ...). ``None`` leaves a key at its default.

    Raises
    ------
    TypeError
        For a keyword that is none of those (the message lists them).
    ConfigError
        For a value the configuration would refuse, named by its keyword and key.
    """

    sensor_class: ClassVar[type] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.sensor_class is not None:
            SCRIPT_CLASSES[cls.sensor_class.config_section] = cls

    def __init__(self, tile_name: str, all_tiles: str | list[str] | None = None, **parameters):
        from iota2.core.config import all_sections, validate

        sensor_class = self.sensor_class
        own, path_key, output_key = _section_keys(sensor_class)
        sections = all_sections()
        raw: dict[str, dict] = {"chain": {"output_path": ".", "list_tile": all_tiles or tile_name}}
        accepted = set(KEYWORDS) | set(sections[own].params if own in sections else ())
        for name, value in parameters.items():
            if name == "vhr_path":
                if value not in (None, "", "None"):
                    raise ConfigError(f"{type(self).__name__}: vhr_path={value!r}: co-registration to a VHR image "
                                      "is not available in this version; pass vhr_path=None")
                continue
            if name not in accepted:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}; accepted: "
                                f"tile_name, all_tiles, vhr_path, {', '.join(sorted(accepted))}")
            if value is None:
                continue
            if name == "target_proj" and isinstance(value, int):
                value = f"EPSG:{value}"  # iota2 passed the EPSG code as a number
            section, key = _where(sensor_class, *KEYWORDS[name]) if name in KEYWORDS else (own, name)
            raw.setdefault(section, {})[key] = value
        if not raw["chain"].get(path_key):
            raise ConfigError(f"{type(self).__name__}: give image_directory, the folder holding one sub-folder of "
                              f"{getattr(sensor_class, 'label', own)} products per tile (chain.{path_key})")
        self.config = validate(raw, sections, source=f"{type(self).__name__}() keywords")
        self.tile = tile_name
        self.all_tiles = list(self.config["chain"]["list_tile"])
        if tile_name not in self.all_tiles:
            self.all_tiles.insert(0, tile_name)
        self.sensor = sensor_class(self.config, tile_name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tile_name={self.tile!r}, image_directory={str(self.sensor.root)!r})"

    def _grid(self) -> Grid:
        chain = self.config["chain"]
        crs = chain.get("proj")
        if not crs:  # the chain's rule: the CRS of the first tile
            first = self.sensor_class(self.config, self.all_tiles[0])
            crs = first.reference_grid().crs
        return self.sensor.reference_grid(crs=CRS.from_user_input(crs), resolution=chain.get("spatial_resolution"))

    def interpolation_dates(self) -> list[str]:
        """The dates of the features: the chain's temporal grid over ``all_tiles``."""
        dates_by_tile = {tile: self.sensor_class(self.config, tile).input_dates() for tile in self.all_tiles}
        return self.sensor_class.interpolation_dates(self.config, dates_by_tile)

    def get_features(self, ram: float = 128) -> tuple[tuple[SensorFeatures, list], list[str]]:
        """The sensor's features of the tile, computed when read.

        Parameters
        ----------
        ram
            Memory (MB) of one block of :meth:`SensorFeatures.block_windows`, as iota2's ``ram``.

        Returns
        -------
        ((pipeline, dependencies), labels)
            ``pipeline``: a :class:`SensorFeatures` (an :class:`iota2.common.images.InMemoryImage`) that any
            application of :mod:`iota2.common.otb_app_bank` takes as an image input; ``dependencies``: the objects
            it needs kept alive (this sensor); ``labels``: its band names, the chain's feature labels.
        """
        if not getattr(self.sensor_class, "provides_grid", True):
            raise ConfigError(f"{type(self).__name__}: {self.sensor_class.config_section} is read onto another "
                              "sensor's grid; compute its features with the chain (i2_features_map)")
        self.sensor.check_inputs()
        pipeline = SensorFeatures(self.config, self.tile, self.sensor_class, self._grid(),
                                  self.interpolation_dates(), ram)
        return (pipeline, [self]), list(pipeline.band_names)
