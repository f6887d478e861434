"""Sensor module (registered through the iota2 entry-point group)."""
