"""The feature stage: features of a window of a tile across every enabled sensor.

Sensors read series (:class:`iota2.core.sensor.SensorData`); this stage makes the features, in this order:

1. each sensor's default features as its :class:`iota2.core.sensor.FeatureSpec` describes them (bands, the
   normalised-difference indices and brightness of :mod:`iota2.core.indices`, band-math expressions);
2. the feature functions of ``external_features`` (:mod:`iota2.core.feature_functions`), on the window grown
   by ``python_data_managing.padding_size`` pixels and cropped back after they ran;
3. concatenation after the default features (``external_features.concat_mode: True``) or replacement.

Sensors are stacked in iota2's order (Landsat 5 old, Landsat 8, Landsat 8 old, Sentinel-1,
Sentinel-2 THEIA, Sentinel-2 Sen2Cor, Sentinel-2 L3A, generic time-series stack, user features); sensors unknown to that list
come after, by name. The :class:`FeatureBlock` keeps each sensor's data so feature functions can
read interpolated bands, raw series and masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from rasterio.windows import Window

from iota2.core.band_math import BandMath
from iota2.core.errors import ConfigError
from iota2.core.indices import brightness, normalised_difference
from iota2.core.raster import Grid, pad_window
from iota2.core.sensor import FeatureSpec, SensorData

#: nodata value of the reflectances once read, shared by every sensor
NODATA = -10000
#: spectral indices of Sentinel-2 and the (low, high) bands of the normalised ones: (high - low) / (high + low)
INDEX_BANDS = {"NDVI": ("B4", "B8"), "NDWI": ("B8", "B11"), "BRIGHTNESS": ()}

SENSOR_ORDER = ["Landsat5_old", "Landsat8", "Landsat8_old", "Sentinel_1", "Sentinel_2", "Sentinel_2_S2C",
                "Sentinel_2_L3A", "timeseries_stack", "userFeat"]


@dataclasses.dataclass
class FeatureBlock:
    """Features of one window: ``features`` (rows, cols, n) float32 and their ``labels``.

    ``validity`` counts valid observations over all sensors; ``footprint`` is True where every
    sensor has data (iota2's common mask); ``sensors`` maps sensor names to their
    :class:`iota2.core.sensor.SensorData`.
    """

    features: np.ndarray
    labels: list[str]
    validity: np.ndarray
    footprint: np.ndarray
    sensors: dict


def enabled_sensors(config) -> list[type]:
    """Sensor classes enabled by ``config`` in stacking order."""
    from iota2.core.plugins import sensors

    registered = sensors()
    order = {name: index for index, name in enumerate(SENSOR_ORDER)}
    enabled = [cls for section, cls in registered.items() if cls.enabled(config)]
    enabled.sort(key=lambda cls: (order.get(cls.config_section, len(order)), cls.config_section))
    if not enabled:
        keys = ", ".join(f"chain.{cls.path_key}" for cls in registered.values())
        raise ConfigError(f"no sensor is enabled: set one of {keys} to the folder of your images")
    return enabled


def grid_sensor(sensor_classes: list[type]) -> type:
    """The sensor whose grid is the tiles' reference grid: among sensors that provide a grid, the one with
    the finest native resolution (the first in stacking order on a tie)."""
    candidates = [cls for cls in sensor_classes if getattr(cls, "provides_grid", True)]
    if not candidates:
        names = ", ".join(cls.config_section for cls in sensor_classes)
        raise ConfigError(f"none of the enabled sensors ({names}) defines a tile grid; enable an optical sensor "
                          "(e.g. chain.s2_path) or a time-series stack next to them")
    return min(candidates, key=lambda cls: cls.native_resolution)


def spectral_features(interpolated: np.ndarray, band_names: list[str], dates: list[str], *,
                      sensor: str = "Sentinel2", copy_input: bool = True,
                      indices: list[str] | tuple[str, ...] = ("NDVI", "NDWI", "Brightness"),
                      keep_bands: list[str] | None = None, additional_features: list[str] | tuple[str, ...] = (),
                      nodata: float = NODATA, index_bands: dict | None = None,
                      section: str = "Sentinel_2") -> tuple[np.ndarray, list[str]]:
    """Feature stack of a gap-filled optical time series (iota2's ``iota2FeatureExtraction``).

    The stack holds, in this order: (if ``copy_input``) the reflectances date-major (date 1: B2..B12,
    date 2: ...), then for each name of ``indices`` that index for every date, then each additional
    band-math expression for every date.

    * NDVI = (NIR - red) / (NIR + red) x 1000 (Sentinel-2: B8 and B4);
    * NDWI = (SWIR - NIR) / (SWIR + NIR) x 1000 -- iota2's order (SWIR first), the opposite sign of Gao's
      NDWI (Sentinel-2: B11 and B8);
    * Brightness = sqrt(sum of the squares of the date's kept bands), unscaled.

    An index is 0 where the absolute value of its denominator is below 1e-5, and ``nodata`` where any
    kept band of the date equals ``nodata``. Additional expressions use ``b1`` ... ``bN`` for the date's
    bands in stack order (all bands, not only the kept ones) and are truncated towards zero, as iota2
    stores them as int16: scale them in the expression.

    Parameters
    ----------
    interpolated
        (dates, bands, rows, cols) values.
    band_names
        Band names of axis 1, e.g. a sensor's ``bands``.
    dates
        ``YYYYMMDD`` dates of axis 0.
    sensor
        Label prefix (lower-cased in labels).
    copy_input
        Keep the reflectances in the stack.
    indices
        Index names, keys of ``index_bands`` (case-insensitive).
    keep_bands
        Bands kept for the reflectances and the brightness; ``None`` keeps all.
    additional_features
        Band-math expressions evaluated per date.
    nodata
        Nodata value of the reflectances.
    index_bands
        ``{"NDVI": (red, NIR), "NDWI": (NIR, SWIR), "BRIGHTNESS": ()}``: the (low, high) bands of the
        normalised indices; default :data:`INDEX_BANDS` (Sentinel-2).
    section
        Configuration section named in error messages.

    Returns
    -------
    features : numpy.ndarray
        (rows, cols, n_features) float32, C-contiguous.
    labels : list of str
        Lower-case labels, e.g. ``sentinel2_b2_20180511``, ``sentinel2_ndvi_20180511``,
        ``sentinel2_user_features_1_20180511``.
    """
    spec = spectral_feature_spec(band_names, copy_input=copy_input, indices=indices, keep_bands=keep_bands,
                                 additional_features=additional_features, nodata=nodata, index_bands=index_bands,
                                 section=section)
    return series_features(interpolated, band_names, dates, sensor, spec)


def spectral_feature_spec(band_names: list[str], *, copy_input: bool = True,
                          indices: list[str] | tuple[str, ...] = ("NDVI", "NDWI", "Brightness"),
                          keep_bands: list[str] | None = None, additional_features: list[str] | tuple[str, ...] = (),
                          nodata: float = NODATA, index_bands: dict | None = None,
                          section: str = "Sentinel_2") -> FeatureSpec:
    """The :class:`FeatureSpec` of an optical stack (see :func:`spectral_features` for the parameters).

    Raises :class:`iota2.core.errors.ConfigError` naming the key on unknown bands, unknown indices, an index
    whose bands are not kept, and band-math expressions that do not parse."""
    index_bands = INDEX_BANDS if index_bands is None else index_bands
    band_names = list(band_names)
    if keep_bands is not None:
        unknown = [band for band in keep_bands if band not in band_names]
        if unknown:
            raise ConfigError(f"{section}.keep_bands: unknown band(s) {', '.join(map(str, unknown))}; "
                              f"use bands among {', '.join(band_names)}")
    kept_names = band_names if keep_bands is None else [band for band in band_names if band in keep_bands]
    requested = []
    for name in indices:
        key = str(name).upper()
        if key not in index_bands:
            raise ConfigError(f"arg_train.features: unknown feature {name!r}; use any of "
                              f"{', '.join(sorted(index_bands))} (or [] for none)")
        missing = [band for band in index_bands[key] if band not in kept_names]
        if missing:
            raise ConfigError(f"{section}.keep_bands must contain {', '.join(missing)} to compute {name} "
                              f"(arg_train.features); add it or remove {name} from arg_train.features")
        requested.append((key, tuple(index_bands[key])))
    expressions = tuple(expression for expression in additional_features if expression.strip())
    for expression in expressions:  # parse now: a wrong expression fails before any read
        BandMath(expression, band_names, f"{section}.additional_features")
    return FeatureSpec(copy_input=copy_input, kept_bands=None if keep_bands is None else tuple(kept_names),
                       indices=tuple(requested), known_indices=tuple((key, tuple(roles)) for key, roles in
                                                                     index_bands.items()),
                       expressions=expressions, nodata=nodata, section=section)


def series_features(interpolated: np.ndarray, band_names: list[str], dates: list[str], sensor: str,
                    spec: FeatureSpec) -> tuple[np.ndarray, list[str]]:
    """Default features of dated series as ``spec`` describes them (layouts ``date_major`` and ``band_major``).

    Returns ``(features, labels)``: (rows, cols, n) float32 C-contiguous and lower-case labels
    ``<sensor>_<band or index>_<date>``.
    """
    n_dates, n_bands, rows, cols = interpolated.shape
    band_names = list(band_names)
    tokens = [band.lower() for band in band_names] if spec.band_labels is None else list(spec.band_labels)
    kept = list(range(n_bands)) if spec.kept_bands is None else [band_names.index(b) for b in spec.kept_bands]
    compiled = [BandMath(expression, band_names, f"{spec.section}.additional_features")
                for expression in spec.expressions]
    prefix = sensor.lower()
    dates = list(dates)
    n_features = (n_dates * len(kept) if spec.copy_input else 0) + n_dates * (len(spec.indices) + len(compiled))
    features = np.empty((rows, cols, n_features), dtype=np.float32)
    pixels = features.reshape(rows * cols, n_features)  # a view: (pixels, features)
    labels: list[str] = []
    offset = 0
    if spec.copy_input:
        block = n_dates * len(kept)
        if spec.layout == "band_major":
            pixels[:, offset:offset + block] = interpolated[:, kept].transpose(1, 0, 2, 3).reshape(block, -1).T
            labels += [f"{prefix}_{tokens[band]}_{date}" for band in kept for date in dates]
        else:
            values = interpolated if kept == list(range(n_bands)) else interpolated[:, kept]
            pixels[:, offset:offset + block] = values.reshape(block, rows * cols).T
            labels += [f"{prefix}_{tokens[band]}_{date}" for date in dates for band in kept]
        offset += block
    if spec.indices:
        checked = kept if spec.index_nodata_bands == "kept" else range(n_bands)
        no_data = np.zeros((n_dates, rows, cols), dtype=bool)
        for band in checked:
            no_data |= np.abs(interpolated[:, band] - spec.nodata) < 0.1
        index = np.empty((n_dates, rows, cols), dtype=np.float32)
        for key, roles in spec.indices:
            if not roles:
                brightness([interpolated[:, band] for band in kept], no_data, spec.nodata, out=index)
            else:
                low, high = (interpolated[:, band_names.index(band)] for band in roles)
                normalised_difference(high, low, no_data, spec.nodata, out=index)
            pixels[:, offset:offset + n_dates] = index.reshape(n_dates, rows * cols).T
            labels += [f"{prefix}_{key.lower()}_{date}" for date in dates]
            offset += n_dates
    if compiled:
        namespace = {f"b{band + 1}": interpolated[:, band].astype(np.float32) for band in range(n_bands)}
        for number, expression in enumerate(compiled, start=1):
            with np.errstate(all="ignore"):
                value = expression.evaluate(namespace)
            value = np.broadcast_to(np.asarray(value, dtype=np.float32), (n_dates, rows, cols))
            value = np.trunc(np.nan_to_num(value, nan=0.0, posinf=32767.0, neginf=-32768.0))
            pixels[:, offset:offset + n_dates] = value.reshape(n_dates, rows * cols).T
            labels += [f"{prefix}_user_features_{number}_{date}" for date in dates]
            offset += n_dates
    return features, labels


def default_features(data: SensorData) -> tuple[np.ndarray, list[str]]:
    """The default features of one sensor's window, as its :class:`FeatureSpec` describes them."""
    spec = data.spec
    if spec.layout == "static":
        values = data.static
        features = np.ascontiguousarray(values.transpose(1, 2, 0), dtype=np.float32)
        return features, list(spec.labels)
    return series_features(data.interpolated, data.band_names, data.interpolation_dates, data.sensor, spec)


def read_features(config, tile: str, grid: Grid, window: Window, dates_by_sensor: dict[str, list[str]],
                  sensor_classes: list[type] | None = None,
                  pixels: tuple[np.ndarray, np.ndarray] | None = None, functions=None) -> FeatureBlock:
    """Read ``window`` of ``tile`` from every enabled sensor and make its features.

    With ``pixels`` = (rows, cols) relative to the window, only those pixels are returned and the block
    is an image of 1 row and ``len(rows)`` columns (without feature functions only those pixels are
    computed; with them the whole window is, as functions may look at neighbours).
    ``functions`` is the :class:`iota2.core.feature_functions.FeatureFunctions` of the configuration
    (loaded from it when ``None``; pass it to avoid importing a user module for every window).
    """
    sensor_classes = sensor_classes or enabled_sensors(config)
    if functions is None and (config["external_features"].get("functions") or None):
        from iota2.core.feature_functions import FeatureFunctions

        functions = FeatureFunctions.from_config(config)
    if not functions:
        return _stack(_read_sensors(config, tile, grid, window, dates_by_sensor, sensor_classes, pixels))
    padding = int(config["python_data_managing"].get("padding_size") or 0)
    padded, (crop_rows, crop_cols) = pad_window(window, padding, grid)
    data = _read_sensors(config, tile, grid, padded, dates_by_sensor, sensor_classes, None)
    where = f"tile {tile}, window rows {int(window.row_off)}-{int(window.row_off + window.height)}, " \
            f"cols {int(window.col_off)}-{int(window.col_off + window.width)}"
    extra, extra_labels = functions.apply(data, where)
    block = _stack(data) if functions.concat_mode else None
    if block is None:
        validity, footprint = _masks(data)
        block = FeatureBlock(extra, list(extra_labels), validity, footprint, data)
    else:
        clash = sorted(set(block.labels) & set(extra_labels))
        if clash:
            from iota2.core.feature_functions import FeatureFunctionError

            raise FeatureFunctionError(f"external_features: feature function label(s) {clash[:5]} are labels of "
                                       "iota2's own features; rename them in the function, or set "
                                       "external_features.concat_mode: False to keep the functions' features only",
                                       "labels")
        block.features = np.concatenate([block.features, extra], axis=2)
        block.labels = block.labels + list(extra_labels)
    select = (crop_rows, crop_cols)
    if pixels is not None:
        rows_at, cols_at = (np.asarray(index) for index in pixels)
        select = (rows_at + crop_rows.start, cols_at + crop_cols.start)
    block.features = np.ascontiguousarray(block.features[select], dtype=np.float32)
    block.validity = block.validity[select]
    block.footprint = block.footprint[select]
    if pixels is not None:
        block.features = block.features[np.newaxis]
        block.validity = block.validity[np.newaxis]
        block.footprint = block.footprint[np.newaxis]
    return block


def _read_sensors(config, tile, grid, window, dates_by_sensor, sensor_classes, pixels) -> dict:
    data = {}
    for cls in sensor_classes:
        sensor_data = cls(config, tile).read(grid, window, dates_by_sensor[cls.config_section], pixels=pixels)
        data[sensor_data.sensor] = sensor_data
    return data


def _masks(data: dict) -> tuple[np.ndarray, np.ndarray]:
    validity = footprint = None
    for sensor_data in data.values():
        validity = sensor_data.validity.astype(np.uint16) if validity is None else validity + sensor_data.validity
        footprint = sensor_data.footprint.copy() if footprint is None else footprint & sensor_data.footprint
    return validity, footprint


def _stack(data: dict) -> FeatureBlock:
    """Default features of every sensor, stacked in sensor order."""
    blocks, labels = [], []
    for sensor_data in data.values():
        features, sensor_labels = sensor_data.default_features()
        blocks.append(features)
        labels.extend(sensor_labels)
        sensor_data._default = None  # the block holds them now: do not keep a second copy
    features = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2)
    validity, footprint = _masks(data)
    return FeatureBlock(np.ascontiguousarray(features, dtype=np.float32), labels, validity, footprint, data)


def bytes_per_pixel(config, tile: str, dates_by_sensor: dict[str, list[str]],
                    sensor_classes: list[type] | None = None) -> int:
    """Estimated peak memory per pixel of :func:`read_features` plus a classification of its result."""
    sensor_classes = sensor_classes or enabled_sensors(config)
    total = 0
    for cls in sensor_classes:
        total += cls(config, tile).bytes_per_pixel(len(dates_by_sensor[cls.config_section]))
    if config["external_features"].get("functions"):
        # accessors' series (rows, cols, dates) float32 kept for the window, the functions' output, and the copy
        # made when it is appended to the default features (measured with get_ndvi + laplace_ndvi at 36 dates:
        # 7.3 kB per pixel, estimated 12.7 kB)
        dates = max((len(dates) for dates in dates_by_sensor.values()), default=1)
        total = total + 8 * 4 * max(dates, 1)
    return int(total * 1.5) + 64
