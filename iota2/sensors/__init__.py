"""Built-in sensors, one module per sensor, each registered as an ``iota2`` plugin.

A sensor module defines a :class:`iota2.core.sensor.Sensor` subclass and the hooks
``iota2_register_sensors`` (the class) and ``iota2_config_sections`` (its configuration keys).
"""
