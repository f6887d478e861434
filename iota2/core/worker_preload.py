"""Imported by each dask worker at start (dask ``preload``): loads the plugins and the heavy libraries
once and compiles the forest kernel (or loads it from numba's cache), while the driver is still checking inputs, so the first task of a worker does not pay for them."""

import geopandas  # noqa: F401
import pyogrio  # noqa: F401
import rasterio  # noqa: F401
import sklearn.ensemble  # noqa: F401

from iota2.core.plugins import get_plugin_manager
from iota2.core.tree_ensemble import warm_up

get_plugin_manager()
warm_up()
