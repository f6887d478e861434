"""Sentinel-2 THEIA L2A (MAJA) products.

Layout read (iota2's)::

    <s2_path>/<TILE>/SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7/
        SENTINEL2A_..._FRE_B2.tif ... _FRE_B12.tif        (B2, B3, B4, B8 at 10 m; the others at 20 m)
        MASKS/SENTINEL2A_..._CLM_R1.tif, _SAT_R1.tif, _EDG_R1.tif   (10 m)

The acquisition date is the second ``_``-separated field of the product name, before its first ``-``.
An observation is invalid where any of the three masks is non-zero; the footprint is where ``EDG`` is 0
on at least one date. Bands are stacked in the order B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12;
reflectances are stored x10000 with nodata -10000.

Everything but the layout is shared with the other optical sensors in :mod:`iota2.sensors.optical`
(reading onto the reference grid, gap-filling, indices, labels); the names below are re-exported for
the modules that import them from here (``aligned_window`` and ``read_onto_grid`` live in
:mod:`iota2.core.raster`).
"""

from __future__ import annotations

from iota2.core.hookspecs import hookimpl
from iota2.core.raster import aligned_window, read_onto_grid
from iota2.sensors.optical import (INDEX_BANDS, INDEX_EPSILON, MASK_FILL, NODATA, MaskSpec, OpticalSensor,
                                   TheiaProduct, compute_features, sensor_sections, theia_date)
from iota2.sensors.script_api import ScriptSensor

__all__ = ["BANDS", "BANDS_10M", "INDEX_BANDS", "INDEX_EPSILON", "MASKS", "MASK_FILL", "NODATA", "Product",
           "Sentinel2Theia", "aligned_window", "compute_features", "product_date", "read_onto_grid", "sentinel_2"]

#: stack order of the bands
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: bands delivered at 10 m (the others are at 20 m)
BANDS_10M = frozenset({"B2", "B3", "B4", "B8"})
#: masks of the R1 (10 m) group; an observation is invalid where any of them is non-zero
MASKS = ("CLM", "SAT", "EDG")

#: acquisition date of a THEIA product name (``SENTINEL2A_20180511-105804-037_...`` -> ``"20180511"``)
product_date = theia_date


class Product(TheiaProduct):
    """One THEIA L2A product folder of a tile: ``<name>_FRE_<band>.tif`` and ``MASKS/<name>_<mask>_R1.tif``."""

    bands = BANDS
    masks = MASKS


class Sentinel2Theia(OpticalSensor):
    """Sentinel-2 L2A products of the THEIA land data centre (MAJA), one tile.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``Sentinel_2``, ``sensors_data_interpolation``,
        ``iota2_feature_extraction`` and ``arg_train`` are read).
    tile
        Tile name, e.g. ``"T31TCJ"``; its products are in ``<chain.s2_path>/<tile>/``.
    """

    name = "Sentinel2"
    label = "Sentinel-2 THEIA"
    config_section = "Sentinel_2"
    path_key = "s2_path"
    native_resolution = 10.0
    product_glob = "SENTINEL2*_L2A_*"
    product_regex = r"SENTINEL2[A-Z]?_\d{8}-\d{6}-\d{3}_L2A_.+"
    product_example = "SENTINEL2A_20180511-105804-037_L2A_T31TCJ_D_V1-7"
    product_class = Product
    bands = BANDS
    reference_band = "B2"
    source_nodata = NODATA
    nodata = NODATA
    mask_specs = (MaskSpec("CLM"), MaskSpec("SAT"), MaskSpec("EDG", footprint=True))
    index_bands = INDEX_BANDS


@hookimpl
def iota2_register_sensors():
    """Register the THEIA Sentinel-2 sensor."""
    return [Sentinel2Theia]


@hookimpl
def iota2_config_sections():
    """Declare the ``Sentinel_2`` section and the ``chain`` keys of Sentinel-2 products."""
    return sensor_sections(
        Sentinel2Theia, "Sentinel-2 L2A products of THEIA (MAJA format).",
        "Folder holding one sub-folder per tile of Sentinel-2 THEIA L2A products (SENTINEL2*_L2A_*); enables the "
        "Sentinel-2 sensor.")


class sentinel_2(ScriptSensor):  # noqa: N801 - iota2's script API name
    """iota2's script class of the Sentinel-2 THEIA sensor: ``sentinel_2(**parameters).get_features(ram)``
    gives its features on a tile, computed when read (:mod:`iota2.sensors.script_api`)."""

    sensor_class = Sentinel2Theia
