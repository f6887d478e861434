"""Sentinel-2 L2A products of ESA's Sen2Cor processor (``.SAFE`` folders, JPEG 2000 files).

Layout read::

    <s2_s2c_path>/<TILE>/S2A_MSIL2A_20180511T105031_N0206_R051_T31TCJ_20180511T140000.SAFE/
        GRANULE/<granule>/IMG_DATA/R10m/*_B02_10m.jp2, *_B03_10m.jp2, *_B04_10m.jp2, *_B08_10m.jp2
        GRANULE/<granule>/IMG_DATA/R20m/*_B05_20m.jp2, B06, B07, B8A, B11, B12, *_SCL_20m.jp2

The acquisition date is the third ``_``-separated field of the product name, before its ``T``. The
scene classification (``SCL``) flags invalid observations: 0 no data, 1 saturated or defective,
3 cloud shadow, 8 and 9 cloud (medium and high probability), 10 thin cirrus; 0 is also outside the
footprint. Reflectances are stored x10000 (the scale of THEIA's products) with nodata 0, replaced by
-10000 when read. Since processing baseline 04.00 (products from 25 January 2022, ``N0400`` and later in
the name) the files hold reflectance x10000 + 1000: the offset (``BOA_ADD_OFFSET`` per band) and the scale
(``BOA_QUANTIFICATION_VALUE``) are read from the product's ``MTD_MSIL2A.xml`` and removed, so products
before and after the change are on one scale. Bands are stacked B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 (files ``B02``...), so
labels are ``sentinel2s2c_b2_YYYYMMDD``... Files are read through GDAL's JPEG 2000 driver
(``JP2OpenJPEG``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from iota2.core.errors import InputDataError
from iota2.core.hookspecs import hookimpl
from iota2.sensors.optical import (INDEX_BANDS, NODATA, MaskSpec, OpticalProduct, OpticalSensor, _valid_date,
                                   sensor_sections)
from iota2.sensors.script_api import ScriptSensor

#: stack order of the bands
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: band token in the file names and resolution folder of each band
BAND_FILES = {"B2": ("B02", 10), "B3": ("B03", 10), "B4": ("B04", 10), "B5": ("B05", 20), "B6": ("B06", 20),
              "B7": ("B07", 20), "B8": ("B08", 10), "B8A": ("B8A", 20), "B11": ("B11", 20), "B12": ("B12", 20)}
#: scene-classification classes flagging an invalid observation
SCL_INVALID = (0, 1, 3, 8, 9, 10)
#: nodata value of the Sen2Cor band files
S2C_NODATA = 0
#: index of each band in the ``band_id`` attributes of ``MTD_MSIL2A.xml`` (B1 = 0 ... B12 = 12)
BAND_IDS = {"B1": 0, "B2": 1, "B3": 2, "B4": 3, "B5": 4, "B6": 5, "B7": 6, "B8": 7, "B8A": 8, "B9": 9, "B10": 10,
            "B11": 11, "B12": 12}
#: offset ESA applies to every band from processing baseline 04.00 on
BASELINE_04_OFFSET = -1000.0
#: the chain's reflectance scale
REFLECTANCE_SCALE = 10000.0

LOGGER = logging.getLogger(__name__)


def s2c_date(name: str) -> str | None:
    """Acquisition date ``YYYYMMDD`` of a Sen2Cor product name, or ``None`` if it has none.

    ``S2A_MSIL2A_20180511T105031_N0206_R051_T31TCJ_20180511T140000.SAFE`` -> ``"20180511"``.
    """
    fields = name.split("_")
    if len(fields) < 3:
        return None
    return _valid_date(fields[2].split("T")[0])


def processing_baseline(name: str) -> float | None:
    """Processing baseline of a product name (``..._N0400_...`` -> 4.0), or ``None``."""
    found = re.search(r"_N(\d{2})(\d{2})_", name)
    return int(found.group(1)) + int(found.group(2)) / 100.0 if found else None


@functools.lru_cache(maxsize=512)
def product_radiometry(product_folder: str) -> tuple[dict[int, float], float]:
    """``({band_id: offset}, quantification)`` of a Sen2Cor product.

    From its ``MTD_MSIL2A.xml`` when present (no ``BOA_ADD_OFFSET`` element: offset 0). Without the file
    (products trimmed by hand), baseline 04.00 and later get ESA's offset of -1000 on every band, with a
    warning, and earlier baselines none.
    """
    folder = Path(product_folder)
    metadata = folder / "MTD_MSIL2A.xml"
    if not metadata.is_file():
        baseline = processing_baseline(folder.name)
        if baseline is not None and baseline >= 4.0:
            LOGGER.warning("%s: no MTD_MSIL2A.xml; processing baseline %.2f products carry a reflectance offset, "
                           "assumed to be ESA's %g on every band", folder.name, baseline, BASELINE_04_OFFSET)
            return dict.fromkeys(BAND_IDS.values(), BASELINE_04_OFFSET), REFLECTANCE_SCALE
        return {}, REFLECTANCE_SCALE
    try:
        root = ElementTree.parse(metadata).getroot()
    except ElementTree.ParseError as exc:
        raise InputDataError(f"{metadata} is not valid XML ({exc}); restore the product's metadata file") from exc
    offsets, quantification = {}, REFLECTANCE_SCALE
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        try:
            if tag == "BOA_ADD_OFFSET" and "band_id" in element.attrib:
                offsets[int(element.attrib["band_id"])] = float(element.text)
            elif tag == "BOA_QUANTIFICATION_VALUE":
                quantification = float(element.text)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"{metadata}: unreadable {tag} value {element.text!r}; restore the product's "
                                 "metadata file") from exc
    if quantification <= 0:
        raise InputDataError(f"{metadata}: BOA_QUANTIFICATION_VALUE = {quantification} must be > 0")
    return offsets, quantification


@dataclasses.dataclass(frozen=True)
class S2CProduct(OpticalProduct):
    """One Sen2Cor ``.SAFE`` product; its files are found in ``GRANULE/*/IMG_DATA/R10m`` and ``R20m``."""

    bands = BANDS
    masks = ("SCL",)

    @staticmethod
    def parse_date(name: str) -> str | None:
        """Acquisition date of a Sen2Cor product name."""
        return s2c_date(name)

    def _find(self, token: str, resolution: int) -> Path:
        pattern = f"GRANULE/*/IMG_DATA/R{resolution}m/*_{token}_{resolution}m.jp2"
        found = sorted(self.path.glob(pattern))
        # a missing file is reported with its pattern, which names the folder and the band
        return found[0] if found else self.path / pattern

    def band_path(self, band: str) -> Path:
        """Path of the JPEG 2000 file of ``band`` (``B2`` -> ``*_B02_10m.jp2``)."""
        token, resolution = BAND_FILES[band]
        return self._find(token, resolution)

    def mask_path(self, mask: str) -> Path:
        """Path of the 20 m scene classification (``mask`` is ``"SCL"``)."""
        return self._find(mask, 20)

    def radiometry(self, band: str) -> tuple[float, float]:
        """Baseline 04.00 offset and quantification of ``band`` (see :func:`product_radiometry`)."""
        offsets, quantification = product_radiometry(str(self.path))
        return offsets.get(BAND_IDS[band], 0.0), REFLECTANCE_SCALE / quantification


class Sentinel2S2C(OpticalSensor):
    """Sentinel-2 L2A products of Sen2Cor, one tile.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``Sentinel_2_S2C``, ``sensors_data_interpolation``,
        ``iota2_feature_extraction`` and ``arg_train`` are read).
    tile
        Tile name, e.g. ``"T31TCJ"``; its products are in ``<chain.s2_s2c_path>/<tile>/``.
    """

    name = "Sentinel2S2C"
    label = "Sentinel-2 Sen2Cor"
    config_section = "Sentinel_2_S2C"
    path_key = "s2_s2c_path"
    native_resolution = 10.0
    product_glob = "S2*_MSIL2A_*"
    product_regex = r"S2[A-Z]?_MSIL2A_\d{8}T\d{6}_.+"
    product_example = "S2A_MSIL2A_20180511T105031_N0206_R051_T31TCJ_20180511T140000.SAFE"
    product_class = S2CProduct
    bands = BANDS
    reference_band = "B2"
    source_nodata = S2C_NODATA
    nodata = NODATA
    mask_specs = (MaskSpec("SCL", invalid=SCL_INVALID, footprint=True, outside=(0,), fill=0),)
    index_bands = INDEX_BANDS
    read_threads = 4  # JPEG 2000 decoding is slow and releases the GIL


@hookimpl
def iota2_register_sensors():
    """Register the Sen2Cor Sentinel-2 sensor."""
    return [Sentinel2S2C]


@hookimpl
def iota2_config_sections():
    """Declare the ``Sentinel_2_S2C`` section and the ``chain`` keys of Sen2Cor products."""
    return sensor_sections(
        Sentinel2S2C, "Sentinel-2 L2A products of Sen2Cor (.SAFE folders).",
        "Folder holding one sub-folder per tile of Sen2Cor L2A products (S2*_MSIL2A_*.SAFE); enables the Sen2Cor "
        "Sentinel-2 sensor.")


class sentinel_2_s2c(ScriptSensor):  # noqa: N801 - iota2's script API name
    """iota2's script class of the Sentinel-2 Sen2Cor sensor: ``sentinel_2_s2c(**parameters).get_features(ram)``
    gives its features on a tile, computed when read (:mod:`iota2.sensors.script_api`)."""

    sensor_class = Sentinel2S2C
