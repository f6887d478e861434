"""Writes on a real full disk: a small tmpfs is mounted (root only; skipped with the reason elsewhere), filled, and
every write must fail with the reason, leave nothing under the final name nor a temporary file, and succeed again
once space is freed."""

from __future__ import annotations

import errno
import os
import subprocess

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from iota2.core.errors import OutputWriteError
from iota2.core.raster import Grid, atomic_output, write_raster

SIZE_MIB = 2


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted on ``tmp_path / 'disk'``."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(folder, leave: int = 0):
    """A file taking every free byte of ``folder``'s file system but ``leave``."""
    filler = folder / "filler.bin"
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def noise(bands: int, size: int) -> np.ndarray:
    """Incompressible uint16 data."""
    return np.random.default_rng(0).integers(0, 65535, (bands, size, size), dtype=np.uint16)


def grid(size: int) -> Grid:
    return Grid(CRS.from_epsg(32631), Affine(10, 0, 300000, 0, -10, 4900000), size, size)


def test_write_raster_on_a_full_disk_raises_and_leaves_nothing(small_disk):
    target = small_disk / "out" / "map.tif"
    data = noise(1, 1100)  # 2.4 MB of noise: cannot fit
    with pytest.raises(OutputWriteError, match=rf"no space left on device on {small_disk / 'out'}.*map.tif.*"
                                               r"free space and run again with -restart") as caught:
        write_raster(target, data, grid(1100))
    assert caught.value.errno == errno.ENOSPC
    assert os.listdir(small_disk / "out") == []  # neither the map nor a temporary file
    write_raster(target, data[:, :500, :500], grid(500))  # the space of the failed write was given back
    with rasterio.open(target) as src:
        assert np.array_equal(src.read(), data[:, :500, :500])


def test_a_failure_gdal_only_prints_at_close_is_caught(small_disk):
    """Written in 100-row stripes, the blocks stay in GDAL's cache and are flushed at close(), which prints
    "No space left on device" and returns normally: the check before the rename must refuse the file."""
    target = small_disk / "map.tif"
    data = noise(1, 1100)
    profile = grid(1100).profile(1, "uint16", compress="ZSTD")
    with pytest.raises(OutputWriteError, match="no space left on device"):
        with atomic_output(target) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                for row in range(0, 1100, 100):
                    dst.write(data[:, row:row + 100], window=Window(0, row, 1100, 100))
    assert os.listdir(small_disk) == []


def test_a_python_write_on_a_full_disk_raises_with_the_folder(small_disk):
    filler = fill(small_disk)
    with pytest.raises(OutputWriteError, match=rf"no space left on device on {small_disk}") as caught:
        with atomic_output(small_disk / "report.txt") as tmp:
            tmp.write_text("x" * 100_000)
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert sorted(os.listdir(small_disk)) == ["filler.bin"]
    filler.unlink()
    with atomic_output(small_disk / "report.txt") as tmp:
        tmp.write_text("x" * 100_000)
    assert (small_disk / "report.txt").stat().st_size == 100_000


def test_other_errors_go_up_unchanged(small_disk):
    with pytest.raises(KeyError):
        with atomic_output(small_disk / "map.tif") as tmp:
            tmp.write_bytes(b"partial")
            raise KeyError("not about the disk")
    assert os.listdir(small_disk) == []


def _chunks(output, windows, run=0, tile="T31TCJ"):
    from iota2.builders.classification import chunk_path

    rng = np.random.default_rng(1)
    for index, (col, row, width, height) in enumerate(windows):
        values = np.stack([rng.integers(1, 255, (height, width)), rng.integers(0, 100, (height, width))])
        write_raster(chunk_path(output, tile, run, index), values.astype(np.uint8),
                     grid(400).window_grid(Window(col, row, width, height)), nodata=0)


def test_merging_chunks_on_a_full_disk_fails_with_the_reason_and_a_rerun_succeeds(small_disk):
    """The task that assembles the chunks of a tile fails on a full disk and succeeds, unchanged, once space is
    freed (what -restart does)."""
    from iota2.builders.classification import merge_tile_chunks, tile_map_path

    output = small_disk / "out"
    windows = [[0, 0, 400, 200], [0, 200, 400, 200]]
    _chunks(output, windows)  # 320 KB of noise
    filler = fill(small_disk, leave=100_000)  # the label map alone takes 262 KB (4 blocks, uncompressed)
    with pytest.raises(OutputWriteError, match="no space left on device on .*classif.*-restart"):
        merge_tile_chunks("T31TCJ", grid(400).to_dict(), windows, 0, [1, 2], str(output), "NONE")
    assert not tile_map_path(output, "T31TCJ", 0).exists()
    assert not tile_map_path(output, "T31TCJ", 0, "confidence").exists()
    assert not [name for name in os.listdir(output / "classif") if name.startswith(".")]
    filler.unlink()
    merge_tile_chunks("T31TCJ", grid(400).to_dict(), windows, 0, [1, 2], str(output), "NONE")
    with rasterio.open(tile_map_path(output, "T31TCJ", 0)) as labels:
        assert labels.read(1).shape == (400, 400) and labels.read(1).min() >= 1


@pytest.mark.parametrize("tiles", [1, 2])
def test_mosaic_on_a_full_disk_fails_with_the_reason_and_a_rerun_succeeds(small_disk, tiles):
    """One tile is copied (shutil), two are merged (GDAL): both fail with the reason and leave no file."""
    from iota2.core.mosaic import mosaic_files

    sources = []
    data = noise(1, 400)[0] % 200
    for index in range(tiles):
        source = small_disk / f"tile_{index}.tif"
        tile_grid = Grid(grid(400).crs, grid(400).transform * Affine.translation(index * 400, 0), 400, 400)
        write_raster(source, data.astype(np.uint8), tile_grid, nodata=0)
        sources.append(source)
    before = sorted(os.listdir(small_disk))
    target = small_disk / "final" / "Classif_Seed_0.tif"
    filler = fill(small_disk, leave=20_000)
    with pytest.raises(OutputWriteError, match="no space left on device on .*final.*-restart"):
        mosaic_files(sources, target, "uint8", "ZSTD")
    assert os.listdir(small_disk / "final") == []
    filler.unlink()
    assert sorted(os.listdir(small_disk)) == sorted(before + ["final"])
    mosaic_files(sources, target, "uint8", "ZSTD")
    with rasterio.open(target) as result:
        assert np.array_equal(result.read(1)[:, :400], data.astype(np.uint8))
