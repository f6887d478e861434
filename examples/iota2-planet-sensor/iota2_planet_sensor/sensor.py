"""The PlanetScope-like sensor: the generic time-series stack of iota2 with a fixed layout.

Layout read::

    <planet_path>/<TILE>/20180105_101500_1001_3B_AnalyticMS_SR.tif   (4 bands: blue, green, red, nir; x10000)
    <planet_path>/<TILE>/20180105_101500_1001_3B_udm.tif             (unusable-data mask, != 0 = invalid)

The grid of a tile is the grid of its first scene (3 m or 5 m). Features: the four bands of every
interpolation date, then the NDVI (labels ``planet_red_20180105``, ``planet_ndvi_20180105``).
"""

from __future__ import annotations

from iota2.sensors.timeseries_stack import TimeSeriesStack

#: band order of the AnalyticMS files
BANDS = ("blue", "green", "red", "nir")
#: nodata value of the reflectance files
NODATA = 0


class PlanetScope(TimeSeriesStack):
    """PlanetScope-like daily scenes of one tile.

    Parameters
    ----------
    config
        The validated configuration (sections ``chain``, ``Planet``, ``sensors_data_interpolation`` and
        ``iota2_feature_extraction`` are read).
    tile
        Tile name; its scenes are in ``<chain.planet_path>/<tile>/``.
    """

    name = "planet"
    config_section = "Planet"
    path_key = "planet_path"
    native_resolution = 5.0
    provides_grid = True
    description = "PlanetScope"

    def settings(self) -> dict:
        """Fixed layout (bands, file names, masks) and the user's ``Planet`` section."""
        section = self.config[self.config_section] if self.config_section in self.config else {}
        return {
            "name": "planet",
            "file_pattern": r"^(?P<date>\d{8})_\d{6}_\w+?_3B_AnalyticMS_SR\.tif$",
            "date_format": "%Y%m%d",
            "band_names": list(BANDS),
            "mask_pattern": r"^(?P<date>\d{8})_\d{6}_\w+?_3B_udm\.tif$",
            "nodata": NODATA,
            "indices": {"ndvi": ["nir", "red"]} if section.get("ndvi", True) else {},
            "temporal_resolution": section.get("temporal_resolution", 5),
            "start_date": section.get("start_date", ""),
            "end_date": section.get("end_date", ""),
        }
