"""Precomputed user features (iota2's ``userFeat``): extra rasters stacked after the sensors' features.

Enabled by ``chain.user_feat_path``. Layout read (iota2's)::

    <user_feat_path>/<folder whose name contains the tile name>/<arbo>/
        ...mnt....tif  ...pente....tif  ...aspect....tif

For every entry of ``userFeat.patterns`` (e.g. ``"mnt pente aspect"`` or ``"ALT,ASP,SLP"``) exactly one
raster found by the glob ``userFeat.arbo`` below the tile folder must contain the pattern in its file
name (case-insensitive). Each band of each raster gives one feature labelled
``userfeatures_<pattern>`` (``userfeatures_<pattern>_b<k>`` for band k of a multi-band raster), in
the order of ``patterns``. The sensor has no dates and no masks: it adds nothing to the pixel
validity, and its footprint is where every band has data.

Beyond iota2, rasters need not be aligned with the tile beforehand: a raster in another CRS,
resolution or extent is resampled on the fly onto each window of the tile grid, bilinearly, or with
the nearest neighbour for the patterns of ``userFeat.categorical_patterns`` (class maps). Pixels
outside a raster, or on its nodata, get :data:`NODATA` and are outside the footprint.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from iota2.core.config import Param, Section
from iota2.core.errors import ConfigError, InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.core.raster import Grid, open_raster, read_onto_grid
from iota2.core.sensor import FeatureSpec, Sensor, SensorData

LOGGER = logging.getLogger(__name__)

#: value of features where a raster has no data
NODATA = -10000.0
#: file extensions considered rasters when matching patterns (sidecars such as .aux.xml are ignored)
RASTER_EXTENSIONS = frozenset({".tif", ".tiff", ".gtif", ".vrt", ".img", ".jp2", ".nc", ".asc", ".bil", ".hgt",
                               ".dem", ".rst", ".grd", ".sdat", ".kea", ".hdf"})


def split_patterns(value) -> list[str]:
    """Patterns of a ``userFeat`` key: a list, or a string separated by commas and/or spaces."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [item for item in re.split(r"[\s,]+", value) if item]
    return [str(item) for item in value if str(item).strip()]


def read_band_onto_grid(path: str | Path, band: int, grid: Grid,
                        resampling: Resampling) -> tuple[np.ndarray, np.ndarray]:
    """Read band ``band`` of a raster resampled onto ``grid``, whatever its CRS, resolution and extent.

    A raster already on the grid's pixel lattice at the same resolution is read directly; otherwise
    it is warped with GDAL in float32 (exact transformation, no approximation, so that reading a window gives
    the same values as the matching part of the whole grid), see :func:`iota2.core.raster.read_onto_grid`.

    Parameters
    ----------
    path
        Raster file.
    band
        1-based band index.
    grid
        Target grid (typically a window of a tile's reference grid).
    resampling
        :attr:`Resampling.bilinear` for continuous values, :attr:`Resampling.nearest` for classes.

    Returns
    -------
    values : numpy.ndarray
        (grid.height, grid.width) float32.
    valid : numpy.ndarray
        (grid.height, grid.width) bool, False outside the raster and on its nodata.

    Raises
    ------
    InputDataError
        If the raster is missing, corrupt or has no CRS (the message names it).
    """
    return read_onto_grid(path, grid, resampling, np.nan, bands=band, resampled_direct=False, dtype="float32",
                          tolerance=0.0, with_valid=True)


class UserFeatures(Sensor):
    """Precomputed rasters of one tile (``chain.user_feat_path``, section ``userFeat``).

    Parameters
    ----------
    config
        The validated configuration (``chain.user_feat_path`` and the ``userFeat`` section are read).
    tile
        Tile name, e.g. ``"T31TCJ"``.
    """

    name = "userFeatures"
    config_section = "userFeat"
    path_key = "user_feat_path"
    native_resolution = 10.0
    provides_grid = False

    def _option(self, key: str, default):
        if self.config_section not in self.config:
            return default
        value = self.config[self.config_section].get(key, default)
        return default if value is None else value

    @property
    def patterns(self) -> list[str]:
        """The ``userFeat.patterns`` entries, in stacking order."""
        patterns = split_patterns(self._option("patterns", "ALT,ASP,SLP"))
        if not patterns:
            raise ConfigError("userFeat.patterns is empty; give the parts of the file names of your rasters, "
                              "e.g. 'mnt pente aspect'")
        lowered = [pattern.lower() for pattern in patterns]
        duplicates = sorted({pattern for pattern in lowered if lowered.count(pattern) > 1})
        if duplicates:
            raise ConfigError(f"userFeat.patterns repeats {', '.join(duplicates)} (patterns are case-insensitive)")
        return patterns

    @property
    def categorical_patterns(self) -> set[str]:
        """Lower-cased patterns read with nearest-neighbour resampling."""
        categorical = split_patterns(self._option("categorical_patterns", []))
        known = {pattern.lower() for pattern in self.patterns}
        unknown = [pattern for pattern in categorical if pattern.lower() not in known]
        if unknown:
            raise ConfigError(f"userFeat.categorical_patterns: {', '.join(unknown)} not in userFeat.patterns "
                              f"({', '.join(self.patterns)})")
        return {pattern.lower() for pattern in categorical}

    @property
    def root(self) -> Path:
        value = self.config["chain"].get(self.path_key)
        if value in (None, "", "None"):
            raise ConfigError("chain.user_feat_path is not set: give the folder holding one sub-folder of "
                              "precomputed rasters per tile")
        return Path(value)

    @cached_property
    def tile_folder(self) -> Path:
        """The folder of ``user_feat_path`` whose name contains the tile name (an exact name wins)."""
        root = self.root
        if not root.is_dir():
            raise InputDataError(f"chain.user_feat_path '{root}' is not a folder; it must hold one sub-folder per "
                                 f"tile (e.g. '{root / self.tile}')")
        if (root / self.tile).is_dir():
            return root / self.tile
        folders = sorted(path for path in root.iterdir() if path.is_dir() and self.tile in path.name)
        if not folders:
            raise InputDataError(f"user features of tile {self.tile}: no folder whose name contains '{self.tile}' in "
                                 f"'{root}' (chain.user_feat_path); create '{root / self.tile}' holding the rasters")
        if len(folders) > 1:
            raise InputDataError(f"user features of tile {self.tile}: several folders of '{root}' contain the tile "
                                 f"name ({', '.join(path.name for path in folders)}); keep one")
        return folders[0]

    @cached_property
    def files(self) -> dict[str, Path]:
        """``{pattern: raster}`` for every pattern, in the order of ``patterns``."""
        folder = self.tile_folder
        arbo = str(self._option("arbo", "/*")).lstrip("/") or "*"
        try:
            candidates = sorted(path for path in folder.glob(arbo)
                                if path.is_file() and path.suffix.lower() in RASTER_EXTENSIONS)
        except (ValueError, NotImplementedError) as exc:
            raise ConfigError(f"userFeat.arbo = {arbo!r} is not a valid glob below the tile folder ({exc}); "
                              "use e.g. '/*' or '/*/*'") from exc
        files = {}
        for pattern in self.patterns:
            matches = [path for path in candidates if pattern.lower() in path.name.lower()]
            if len(matches) != 1:
                listing = ", ".join(path.name for path in candidates) or "none"
                problem = ("no raster" if not matches else
                           f"{len(matches)} rasters ({', '.join(str(path) for path in matches)})")
                raise InputDataError(f"user features of tile {self.tile}: {problem} whose name contains the pattern "
                                     f"'{pattern}' in '{folder}' (glob '{arbo}'); each pattern of userFeat.patterns "
                                     f"must match exactly one raster (rasters found: {listing})")
            files[pattern] = matches[0]
        return files

    @cached_property
    def band_counts(self) -> dict[str, int]:
        """Number of bands of each pattern's raster (headers only)."""
        counts = {}
        for pattern, path in self.files.items():
            with open_raster(path) as src:
                counts[pattern] = src.count
        return counts

    @property
    def band_names(self) -> list[str]:
        """Lower-case feature names without the sensor prefix: ``mnt``, or ``geol_b1``, ``geol_b2``..."""
        names = []
        for pattern in self.patterns:
            count = self.band_counts[pattern]
            names += [pattern.lower()] if count == 1 else [f"{pattern.lower()}_b{k}" for k in range(1, count + 1)]
        return names

    @property
    def labels(self) -> list[str]:
        """Feature labels ``userfeatures_<pattern>`` (``_b<k>`` for multi-band rasters)."""
        return [f"{self.name.lower()}_{band}" for band in self.band_names]

    def check_inputs(self, grid: Grid | None = None) -> None:
        """Check the tile folder, one raster per pattern, their headers and (with ``grid``) their coverage.

        A raster that does not cover the whole tile only gives a warning: its missing pixels get nodata
        and leave the common mask.
        """
        self.categorical_patterns  # noqa: B018 - validates the option
        for pattern, path in self.files.items():
            with open_raster(path) as src:
                if src.crs is None:
                    raise InputDataError(f"user feature raster '{path}' (pattern '{pattern}') has no CRS; "
                                         "georeference it (e.g. gdal_edit.py -a_srs EPSG:...)")
                if grid is None:
                    continue
                left, bottom, right, top = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
                bounds = src.bounds
                slack = 1e-6 * max(abs(right - left), abs(top - bottom), 1.0)
                if (bounds.left > left + slack or bounds.right < right - slack or bounds.bottom > bottom + slack
                        or bounds.top < top - slack):
                    overlap = not (bounds.left >= right or bounds.right <= left or bounds.bottom >= top
                                   or bounds.top <= bottom)
                    LOGGER.warning("user feature raster '%s' (pattern '%s') %s tile %s; pixels outside it get "
                                   "nodata and leave the common mask", path, pattern,
                                   "does not fully cover" if overlap else "does not overlap", self.tile)

    def input_dates(self) -> list[str]:
        """No dates: user features are static."""
        return []

    @classmethod
    def interpolation_dates(cls, config, dates_by_tile: dict[str, list[str]]) -> list[str]:
        """No temporal grid."""
        return []

    def reference_grid(self, crs=None, resolution=None) -> Grid:
        raise ConfigError("user features have no tile grid of their own; enable an optical sensor "
                          "(e.g. chain.s2_path) next to chain.user_feat_path")

    def bytes_per_pixel(self, n_interpolation_dates: int) -> int:
        """Estimated peak memory per pixel of :meth:`read`: values, validity and features of every band."""
        return 16 * len(self.band_names) + 32

    def _read_window(self, window_grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """(bands, rows, cols) float32 values (:data:`NODATA` where invalid) and the footprint."""
        categorical = self.categorical_patterns
        values = np.empty((len(self.band_names), window_grid.height, window_grid.width), dtype=np.float32)
        footprint = np.ones((window_grid.height, window_grid.width), dtype=bool)
        index = 0
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            for pattern, path in self.files.items():
                resampling = Resampling.nearest if pattern.lower() in categorical else Resampling.bilinear
                for band in range(1, self.band_counts[pattern] + 1):
                    band_values, valid = read_band_onto_grid(path, band, window_grid, resampling)
                    band_values[~valid] = NODATA
                    values[index] = band_values
                    footprint &= valid
                    index += 1
        return values, footprint

    def read_masks(self, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Validity 0 (no dates) and the footprint of a window."""
        _, footprint = self._read_window(grid.window_grid(window))
        return np.zeros(footprint.shape, dtype=np.uint16), footprint

    def read(self, grid: Grid, window: Window, interpolation_dates: list[str],
             pixels: tuple[np.ndarray, np.ndarray] | None = None) -> SensorData:
        """Read ``window`` of ``grid`` from every raster, resampled onto the grid.

        Parameters
        ----------
        grid
            The tile's reference grid (given by another sensor).
        window
            Window of ``grid`` to read.
        interpolation_dates
            Ignored (no dates).
        pixels
            Optional (rows, cols) inside the window: the result is an image of 1 row and ``len(rows)``
            columns.

        Returns
        -------
        SensorData
            ``static`` (bands, rows, cols), the default features of layout ``"static"``; ``raw``, ``masks`` and
            ``interpolated`` have a 0-length date axis; ``validity`` is 0.
        """
        values, footprint = self._read_window(grid.window_grid(window))
        if pixels is not None:
            rows_at, cols_at = (np.asarray(index) for index in pixels)
            values = values[:, rows_at, cols_at][:, np.newaxis, :]
            footprint = footprint[rows_at, cols_at][np.newaxis, :]
        n_bands, rows, cols = values.shape
        return SensorData(sensor=self.name, band_names=self.band_names, input_dates=[],
                          raw=np.empty((0, n_bands, rows, cols), dtype=np.float32),
                          masks=np.empty((0, rows, cols), dtype=np.uint8), interpolation_dates=[],
                          interpolated=np.empty((0, n_bands, rows, cols), dtype=np.float32),
                          validity=np.zeros((rows, cols), dtype=np.uint16), footprint=footprint,
                          spec=FeatureSpec(layout="static", labels=tuple(self.labels), nodata=NODATA,
                                           section="userFeat"),
                          static=values)


@hookimpl
def iota2_register_sensors():
    """Register the user-features sensor."""
    return [UserFeatures]


@hookimpl
def iota2_config_sections():
    """Declare the ``userFeat`` section and ``chain.user_feat_path``."""
    return [
        Section("userFeat", {
            "arbo": Param("str", "/*", "Glob below each tile folder where rasters are searched, e.g. '/*' (files of "
                          "the tile folder) or '/*/*' (one level deeper)."),
            "patterns": Param("str_or_list", "ALT,ASP,SLP", "Parts of raster file names, comma- or space-separated "
                              "(e.g. 'mnt pente aspect'); each matches exactly one raster per tile "
                              "(case-insensitive) and gives the feature userfeatures_<pattern>."),
            "categorical_patterns": Param("str_or_list", [], "Patterns whose rasters hold classes (e.g. a geology "
                                          "map): resampled onto the tile grid with the nearest neighbour instead of "
                                          "bilinearly."),
        }, "Precomputed user features (chain.user_feat_path); rasters in any CRS, resolution or extent are "
           "resampled onto the tile grid on the fly."),
        Section("chain", {
            "user_feat_path": Param("str", None, "Folder holding one sub-folder per tile (whose name contains the tile "
                                    "name) of precomputed rasters (userFeat section); enables user features."),
        }),
    ]
