"""Zonal statistics of classification maps over polygons (class proportions, descriptive statistics)."""
