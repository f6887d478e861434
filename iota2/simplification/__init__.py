"""Statistics of classification maps over polygons (:mod:`iota2.simplification.zonal_stats`)."""
