"""Built-in feature functions, usable in ``external_features.functions`` without a module.

Each computes one index for every interpolation date of a Sentinel-2 series (sensor ``Sentinel2``, THEIA L2A
from ``chain.s2_path``; the keyword ``sensor`` selects ``Sentinel2S2C`` or ``Sentinel2L3A``) and returns one
feature per date labelled ``<index>_<YYYYMMDD>``, in iota2's integer-friendly scale (x 1000). The index is
``nodata`` (-10000) where a band it uses is nodata, and 0 where its denominator is 0.

* ``get_soi``: Soil Composition Index, (B11 - B8) / (B11 + B8) x 1000 (SWIR, NIR);
* ``get_ndvi``: Normalised Difference Vegetation Index, (B8 - B4) / (B8 + B4) x 1000 (NIR, red);
* ``get_ndsi``: Normalised Difference Snow Index, (B3 - B11) / (B3 + B11) x 1000 (green, SWIR);
* ``get_cari``: Chlorophyll Absorption Ratio Index (Kim et al. 1994) on B3, B4, B5, x 1000.

They are registered through the ``iota2`` entry-point group like third-party functions
(``docs/external_features.md``).
"""

from __future__ import annotations

import numpy as np

from iota2.core.feature_functions import FeatureFunctionError
from iota2.core.hookspecs import hookimpl
from iota2.core.indices import INDEX_EPSILON, INDEX_SCALE, normalised_difference

#: Sentinel-2 sensors whose series the built-ins can read, and the ``chain`` key enabling each
SENTINEL2_SENSORS = {"Sentinel2": "chain.s2_path", "Sentinel2S2C": "chain.s2_s2c_path",
                     "Sentinel2L3A": "chain.s2_l3a_path"}


def _series(container, function: str, sensor: str, bands: tuple[str, ...]):
    """``(bands, no_data, nodata, labels_prefix, dates)`` of ``sensor`` in ``container``, or a clear error."""
    if sensor not in container.interpolated_dates:
        present = [name for name in SENTINEL2_SENSORS if name in container.interpolated_dates]
        hint = f"; this window has {present[0]}: write [{function}, {{sensor: {present[0]}}}] in " \
               "external_features.functions" if present else \
            f"; enable Sentinel-2 ({SENTINEL2_SENSORS.get(sensor, 'chain.s2_path')})"
        raise FeatureFunctionError(f"{function} needs the Sentinel-2 series of sensor '{sensor}' (bands "
                                   f"{', '.join(bands)}), but the window has only "
                                   f"{', '.join(container.sensors) or 'no sensor'}{hint}")
    values = [getattr(container, f"get_interpolated_{sensor}_{band}")() for band in bands]
    nodata = container.nodata[sensor]
    no_data = np.zeros(values[0].shape, dtype=bool)
    distance = np.empty_like(values[0])
    for band in values:
        np.abs(np.subtract(band, nodata, out=distance), out=distance)
        no_data |= distance < 0.1
    return values, no_data, nodata, container.interpolated_dates[sensor]


def _labels(index: str, sensor: str, dates: list[str]) -> list[str]:
    prefix = index if sensor == "Sentinel2" else f"{sensor.lower()}_{index}"
    return [f"{prefix}_{date}" for date in dates]


def _normalised(container, function: str, index: str, sensor: str, high: str, low: str):
    (high_values, low_values), no_data, nodata, dates = _series(container, function, sensor, (high, low))
    return normalised_difference(high_values, low_values, no_data, nodata), _labels(index, sensor, dates)


def get_soi(self, sensor: str = "Sentinel2"):
    """Soil Composition Index (SWIR - NIR) / (SWIR + NIR) x 1000 on B11 and B8, for every date.

    The index of iota2's external-features example (``get_soi``); on Sentinel-2 it has the values of iota2's
    NDWI feature (same bands, same order).
    """
    return _normalised(self, "get_soi", "soi", sensor, "B11", "B8")


def get_ndvi(self, sensor: str = "Sentinel2"):
    """Normalised Difference Vegetation Index (NIR - red) / (NIR + red) x 1000 on B8 and B4 (Rouse et al. 1974)."""
    return _normalised(self, "get_ndvi", "ndvi", sensor, "B8", "B4")


def get_ndsi(self, sensor: str = "Sentinel2"):
    """Normalised Difference Snow Index (green - SWIR) / (green + SWIR) x 1000 on B3 and B11 (Hall et al. 1995)."""
    return _normalised(self, "get_ndsi", "ndsi", sensor, "B3", "B11")


def get_cari(self, sensor: str = "Sentinel2"):
    """Chlorophyll Absorption Ratio Index (Kim et al. 1994) x 1000 on B3 (550 nm), B4 (670 nm), B5 (700 nm).

    With reflectances r550, r670, r700 as fractions (the series / 10000) and the line through (550, r550) and
    (700, r700), ``a = (r700 - r550) / 150`` and ``b = r550 - 550 a``:
    ``CAR = |670 a + b - r670| / sqrt(a^2 + 1)`` (distance of the 670 nm reflectance to that line) and
    ``CARI = CAR x r700 / r670``. 0 where r670 is 0; nodata where B3, B4 or B5 is nodata.
    """
    (green, red, red_edge), no_data, nodata, dates = _series(self, "get_cari", sensor, ("B3", "B4", "B5"))
    r550, r670, r700 = (band / np.float32(10000.0) for band in (green, red, red_edge))
    slope = (r700 - r550) / np.float32(150.0)
    offset = r550 - np.float32(550.0) * slope
    car = np.abs(np.float32(670.0) * slope + offset - r670) / np.sqrt(slope * slope + np.float32(1.0))
    small = np.abs(r670) < INDEX_EPSILON
    ratio = r700 / np.where(small, np.float32(1.0), r670)
    cari = (car * ratio * np.float32(INDEX_SCALE)).astype(np.float32)
    cari[small] = 0.0
    cari[no_data] = nodata
    return cari, _labels("cari", sensor, dates)


@hookimpl
def iota2_register_feature_functions():
    return {"get_soi": get_soi, "get_ndvi": get_ndvi, "get_ndsi": get_ndsi, "get_cari": get_cari}
