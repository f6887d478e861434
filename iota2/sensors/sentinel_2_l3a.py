"""Sentinel-2 L3A products of THEIA (WASP monthly syntheses).

Layout read::

    <s2_l3a_path>/<TILE>/SENTINEL2X_20180515-000000-000_L3A_T31TCJ_D_V1-1/
        SENTINEL2X_..._FRC_B2.tif ... _FRC_B12.tif     (B2, B3, B4, B8 at 10 m; the others at 20 m)
        MASKS/SENTINEL2X_..._FLG_R1.tif                 (10 m)

The date (the synthesis' central date) is the second ``_``-separated field of the product name, before
its first ``-``. ``FLG`` values: 0 no data, 1 cloud or shadow, 2 snow, 3 water, 4 land; 0 and 1 are
invalid and 0 is outside the footprint. Bands are stacked B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12;
reflectances are stored x10000 with nodata -10000. The syntheses are gap-filled onto the temporal
grid like the L2A dates. Labels are ``sentinel2l3a_b2_YYYYMMDD``...
"""

from __future__ import annotations

from iota2.core.hookspecs import hookimpl
from iota2.sensors.optical import INDEX_BANDS, NODATA, MaskSpec, OpticalSensor, TheiaProduct, sensor_sections
from iota2.sensors.script_api import ScriptSensor

#: stack order of the bands
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: ``FLG`` values flagging an invalid observation: no data, cloud or shadow
FLG_INVALID = (0, 1)


class L3AProduct(TheiaProduct):
    """One THEIA L3A product: ``<name>_FRC_<band>.tif`` and ``MASKS/<name>_FLG_R1.tif``."""

    bands = BANDS
    masks = ("FLG",)
    band_prefix = "FRC"


class Sentinel2L3A(OpticalSensor):
    """Sentinel-2 L3A monthly syntheses of the THEIA land data centre, one tile.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``Sentinel_2_L3A``, ``sensors_data_interpolation``,
        ``iota2_feature_extraction`` and ``arg_train`` are read).
    tile
        Tile name, e.g. ``"T31TCJ"``; its products are in ``<chain.s2_l3a_path>/<tile>/``.
    """

    name = "Sentinel2L3A"
    label = "Sentinel-2 L3A"
    config_section = "Sentinel_2_L3A"
    path_key = "s2_l3a_path"
    native_resolution = 10.0
    product_glob = "SENTINEL2*_L3A_*"
    product_regex = r"SENTINEL2[A-Z]?_\d{8}-\d{6}-\d{3}_L3A_.+"
    product_example = "SENTINEL2X_20180515-000000-000_L3A_T31TCJ_D_V1-1"
    product_class = L3AProduct
    bands = BANDS
    reference_band = "B2"
    source_nodata = NODATA
    nodata = NODATA
    mask_specs = (MaskSpec("FLG", invalid=FLG_INVALID, footprint=True, outside=(0,), fill=0),)
    index_bands = INDEX_BANDS


@hookimpl
def iota2_register_sensors():
    """Register the THEIA Sentinel-2 L3A sensor."""
    return [Sentinel2L3A]


@hookimpl
def iota2_config_sections():
    """Declare the ``Sentinel_2_L3A`` section and the ``chain`` keys of L3A products."""
    return sensor_sections(
        Sentinel2L3A, "Sentinel-2 L3A monthly syntheses of THEIA (WASP).",
        "Folder holding one sub-folder per tile of Sentinel-2 THEIA L3A products (SENTINEL2X_*_L3A_*); enables the "
        "Sentinel-2 L3A sensor.")


class sentinel_2_l3a(ScriptSensor):  # noqa: N801 - iota2's script API name
    """iota2's script class of the Sentinel-2 THEIA L3A sensor: ``sentinel_2_l3a(**parameters).get_features(ram)``
    gives its features on a tile, computed when read (:mod:`iota2.sensors.script_api`)."""

    sensor_class = Sentinel2L3A
