"""Hooks registered under the ``iota2`` entry-point group (see ``pyproject.toml``)."""

from __future__ import annotations

from iota2.core.config import Param, Section
from iota2.core.hookspecs import hookimpl

from iota2_planet_sensor.sensor import PlanetScope


def _positive_days(value):
    return None if value > 0 else "must be > 0 (days)"


@hookimpl
def iota2_register_sensors():
    """Register the PlanetScope sensor."""
    return [PlanetScope]


@hookimpl
def iota2_config_sections():
    """Declare the ``Planet`` section and ``chain.planet_path``."""
    return [
        Section("Planet", {
            "temporal_resolution": Param("int", 5, "Days between two dates of the interpolation grid.",
                                         check=_positive_days),
            "start_date": Param("str", "", "First date (YYYYMMDD) of the interpolation grid when "
                                "sensors_data_interpolation.auto_date is False."),
            "end_date": Param("str", "", "Last date (YYYYMMDD) of the interpolation grid when "
                              "sensors_data_interpolation.auto_date is False."),
            "ndvi": Param("bool", True, "Add the NDVI (x1000) of every date to the features."),
        }, "PlanetScope-like 4-band surface reflectance (blue, green, red, nir) with UDM masks."),
        Section("chain", {
            "planet_path": Param("str", None, "Folder holding one sub-folder per tile of PlanetScope scenes "
                                 "(<date>_<time>_<satellite>_3B_AnalyticMS_SR.tif + _3B_udm.tif); enables the "
                                 "Planet sensor."),
        }),
    ]
