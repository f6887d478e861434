"""Tiles prepared once for any builder: grids, interpolation dates and chunk windows from the core."""

import subprocess
import sys

from iota2.core.config import load_config
from iota2.core.tiles import prepare_tiles


def test_prepare_tiles_gives_grids_dates_and_windows(make_config):
    config = load_config(make_config(python_data_managing={"chunk_size_mode": "split_number",
                                                           "number_of_chunks": 3}))
    tiles = prepare_tiles(config)
    assert tiles.tiles == ["T31TCJ", "T31TDJ"]
    assert [cls.config_section for cls in tiles.sensor_classes] == ["Sentinel_2"]
    grid = tiles.grids["T31TCJ"]
    assert (grid.width, grid.height, grid.resolution) == (120, 120, (10.0, 10.0))
    dates = tiles.dates_by_sensor["Sentinel_2"]
    assert dates == sorted(dates) and len(dates) > 2
    windows = tiles.window_lists()["T31TDJ"]
    assert len(windows) == 3 and sum(height for _col, _row, _width, height in windows) == 120


def test_the_core_tiles_need_no_builder():
    imported = subprocess.run([sys.executable, "-c", "import sys, iota2.core.tiles; "
                               "print(sorted(m for m in sys.modules if m.startswith('iota2.builders')))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "[]"
