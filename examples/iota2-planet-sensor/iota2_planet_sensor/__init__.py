"""Example iota2 sensor plugin: PlanetScope-like 4-band surface reflectance with UDM masks."""

from iota2_planet_sensor.sensor import BANDS, PlanetScope

__all__ = ["BANDS", "PlanetScope"]
__version__ = "0.1.0"
