"""Landsat 8 L2A products of THEIA (MAJA format).

Layout read::

    <l8_path>/<TILE>/LANDSAT8-OLITIRS-XS_20180511-103411-123_L2A_T31TCJ_D_V1-9/
        LANDSAT8-OLITIRS-XS_..._FRE_B1.tif ... _FRE_B7.tif      (30 m)
        MASKS/LANDSAT8-OLITIRS-XS_..._CLM_XS.tif, _SAT_XS.tif, _EDG_XS.tif   (30 m)

The acquisition date is the second ``_``-separated field of the product name, before its first ``-``.
An observation is invalid where any of the three masks is non-zero; the footprint is where ``EDG`` is
0 on at least one date. Bands are stacked B1 ... B7; reflectances are stored x10000 with nodata
-10000. Indices: NDVI = (B5 - B4) / (B5 + B4), NDWI = (B6 - B5) / (B6 + B5) (iota2's order), both x1000,
and the brightness. Labels are ``landsat8_b1_YYYYMMDD``, ``landsat8_ndvi_YYYYMMDD``...
"""

from __future__ import annotations

from iota2.core.hookspecs import hookimpl
from iota2.sensors.optical import NODATA, MaskSpec, OpticalSensor, TheiaProduct, sensor_sections
from iota2.sensors.script_api import ScriptSensor

#: stack order of the bands
BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")
#: masks of the XS (30 m) group; an observation is invalid where any of them is non-zero
MASKS = ("CLM", "SAT", "EDG")


class Landsat8Product(TheiaProduct):
    """One THEIA Landsat 8 product: ``<name>_FRE_<band>.tif`` and ``MASKS/<name>_<mask>_XS.tif``."""

    bands = BANDS
    masks = MASKS
    mask_suffix = "XS"


class Landsat8Theia(OpticalSensor):
    """Landsat 8 OLI L2A products of the THEIA land data centre, one tile.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``Landsat8``, ``sensors_data_interpolation``,
        ``iota2_feature_extraction`` and ``arg_train`` are read).
    tile
        Tile name, e.g. ``"T31TCJ"``; its products are in ``<chain.l8_path>/<tile>/``.
    """

    name = "Landsat8"
    label = "Landsat 8 THEIA"
    config_section = "Landsat8"
    path_key = "l8_path"
    native_resolution = 30.0
    product_glob = "LANDSAT8*_L2A_*"
    product_regex = r"LANDSAT8-OLITIRS-XS_\d{8}-\d{6}-\d{3}_L2A_.+"
    product_example = "LANDSAT8-OLITIRS-XS_20180511-103411-123_L2A_T31TCJ_D_V1-9"
    product_class = Landsat8Product
    bands = BANDS
    reference_band = "B1"
    source_nodata = NODATA
    nodata = NODATA
    mask_specs = (MaskSpec("CLM"), MaskSpec("SAT"), MaskSpec("EDG", footprint=True))
    index_bands = {"NDVI": ("B4", "B5"), "NDWI": ("B5", "B6"), "BRIGHTNESS": ()}
    default_temporal_resolution = 16


@hookimpl
def iota2_register_sensors():
    """Register the THEIA Landsat 8 sensor."""
    return [Landsat8Theia]


@hookimpl
def iota2_config_sections():
    """Declare the ``Landsat8`` section and the ``chain`` keys of Landsat 8 products."""
    return sensor_sections(
        Landsat8Theia, "Landsat 8 L2A products of THEIA (MAJA format).",
        "Folder holding one sub-folder per tile of Landsat 8 THEIA L2A products (LANDSAT8-OLITIRS-XS_*_L2A_*); "
        "enables the Landsat 8 sensor.")


class landsat_8(ScriptSensor):  # noqa: N801 - iota2's script API name
    """iota2's script class of the Landsat 8 THEIA sensor: ``landsat_8(**parameters).get_features(ram)``
    gives its features on a tile, computed when read (:mod:`iota2.sensors.script_api`)."""

    sensor_class = Landsat8Theia
