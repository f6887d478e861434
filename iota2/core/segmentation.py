"""SLIC superpixels of a tile, computed chunk by chunk on the feature stack (scikit-image).

Used by the OBIA builder when no segmentation is given and by autocontext (iota2's
``features/<T>/tmp/SLIC_<T>.tif``). SLIC (Achanta et al. 2012) groups neighbouring pixels of similar
features into compact superpixels of about ``spatial_width`` x ``spatial_width`` pixels (10 x 10 by default,
iota2's spatial width for Sentinel-2 at 10 m).

How the features enter SLIC: the chunk's features (hundreds of bands and dates) are standardised (mean 0,
variance 1 per feature over the footprint), reduced to their :data:`COMPONENTS` principal components, and the
components scaled so their summed variance is 1; SLIC's colour distance is then the distance between pixels'
temporal profiles, whatever the number of features. The principal axes are estimated on a fixed, seeded
sample of the chunk's pixels, so a chunk always gives the same superpixels.

Superpixels are computed per chunk and never cross chunk borders (a chunk's memory is bounded by
``python_data_managing``; a superpixel cut by a border becomes two). Ids are unique in a tile: the ids of
chunk ``i`` start at :func:`first_ids` ``[i]`` (the number of pixels of the chunks before it, plus 1), so a
tile of up to 4 294 967 295 pixels fits uint32. 0 is "no superpixel" (outside the common footprint).
"""

from __future__ import annotations

import logging

import numpy as np
from rasterio.windows import Window

from iota2.core.config import Config
from iota2.core.features import read_features
from iota2.core.layout import OutputLayout
from iota2.core.raster import Grid, assemble_chunks, write_raster

LOGGER = logging.getLogger(__name__)

COMPONENTS = 8
"""Principal components of the features SLIC works on."""

COMPACTNESS = 0.3
"""SLIC's balance of feature similarity against shape (scikit-image's ``compactness``, for the scaled
components): at a superpixel's edge the spatial term is ``COMPACTNESS ** 2`` where the features' summed
variance is 1."""

PCA_SAMPLE = 100_000
"""Pixels of a chunk used to estimate its principal axes."""

SEGMENT_DTYPE = "uint32"
"""Pixel type of superpixel and segment id rasters."""


def reduce_features(features: np.ndarray, footprint: np.ndarray, components: int = COMPONENTS,
                    seed: int = 0) -> np.ndarray:
    """The standardised principal components of a feature block, scaled to a summed variance of 1.

    Parameters
    ----------
    features
        ``(rows, cols, n)`` float32.
    footprint
        ``(rows, cols)`` bool: the pixels the statistics are computed on.
    components
        Components kept (at most ``n``).
    seed
        Seed of the sample the axes are estimated on.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, k)`` float32; 0 outside the footprint.
    """
    rows, cols, count = features.shape
    inside = features[footprint]
    k = max(1, min(components, count))
    if len(inside) == 0:
        return np.zeros((rows, cols, k), np.float32)
    sample = inside
    if len(inside) > PCA_SAMPLE:
        sample = inside[np.sort(np.random.default_rng(seed).choice(len(inside), PCA_SAMPLE, replace=False))]
    sample = sample.astype(np.float64)
    mean = sample.mean(axis=0)
    scale = sample.std(axis=0)
    scale[scale == 0] = 1.0
    standard = (sample - mean) / scale
    covariance = standard.T @ standard / max(1, len(standard) - 1)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1][:k]
    axes = vectors[:, order]
    axes *= np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(k)])  # a sign that does not depend on LAPACK
    kept = float(values[order].clip(min=0).sum())
    axes /= np.sqrt(kept) if kept > 0 else 1.0
    reduced = np.zeros((rows, cols, k), np.float32)
    reduced[footprint] = (((inside - mean) / scale) @ axes).astype(np.float32)
    return reduced


def slic_superpixels(features: np.ndarray, footprint: np.ndarray, *, spatial_width: int = 10,
                     first_id: int = 1, compactness: float = COMPACTNESS) -> np.ndarray:
    """SLIC superpixels of a feature block.

    Parameters
    ----------
    features
        ``(rows, cols, n)`` float32.
    footprint
        ``(rows, cols)`` bool: pixels outside get id 0 and do not shape the superpixels.
    spatial_width
        Side of a superpixel in pixels (about ``footprint.sum() / spatial_width**2`` superpixels).
    first_id
        Id of the first superpixel; the others follow without gaps.
    compactness
        See :data:`COMPACTNESS`.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` uint32 ids, ``first_id``, ``first_id + 1`` ... inside the footprint, 0 outside.
    """
    from skimage.segmentation import slic

    if spatial_width < 1:
        raise ValueError(f"spatial_width must be at least 1 pixel, not {spatial_width}")
    footprint = np.asarray(footprint, bool)
    ids = np.zeros(footprint.shape, np.uint32)
    pixels = int(footprint.sum())
    if pixels == 0:
        return ids
    reduced = reduce_features(features, footprint)
    segments = max(1, int(round(pixels / spatial_width ** 2)))
    labels = slic(reduced, n_segments=segments, compactness=compactness, start_label=1, channel_axis=-1,
                  convert2lab=False, enforce_connectivity=True)
    # outside the footprint: no superpixel; ids made consecutive again after the cut
    present, consecutive = np.unique(labels[footprint], return_inverse=True)
    if first_id + len(present) - 1 > np.iinfo(np.uint32).max:
        raise ValueError(f"superpixel ids from {first_id} overflow uint32")
    ids[footprint] = (consecutive + first_id).astype(np.uint32)
    return ids


def first_ids(windows: list[list[int]]) -> list[int]:
    """First superpixel id of each chunk of a tile: 1 + the pixels of the chunks before it.

    Parameters
    ----------
    windows
        ``[col_off, row_off, width, height]`` of each chunk, in chunk order.
    """
    sizes = [int(width) * int(height) for _, _, width, height in windows]
    return [1 + int(before) for before in np.cumsum([0] + sizes[:-1])]


def segment_chunk(config: dict, tile: str, grid: dict, window: list[int], chunk: int, dates_by_sensor: dict,
                  output_path: str, *, first_id: int, spatial_width: int = 10, compression: str = "ZSTD") -> None:
    """Compute the SLIC superpixels of one chunk and write ``features/<T>/tmp/SLIC_<T>_chunk_<i>.tif``.

    Parameters
    ----------
    config
        :func:`iota2.core.tile_steps.sensor_config` of the configuration.
    tile, grid, window, chunk
        The tile, its grid (:meth:`iota2.core.raster.Grid.to_dict`), the chunk's ``[col_off, row_off, width,
        height]`` and its index.
    dates_by_sensor
        Interpolation dates of each sensor.
    output_path
        ``chain.output_path``.
    first_id
        Id of the chunk's first superpixel (:func:`first_ids`).
    spatial_width
        Side of a superpixel in pixels.
    compression
        ``chain.compression_algorithm``.
    """
    config = Config(config)
    grid = Grid.from_dict(grid)
    window = Window(*window)
    block = read_features(config, tile, grid, window, dates_by_sensor)
    ids = slic_superpixels(block.features, block.footprint, spatial_width=spatial_width, first_id=first_id)
    write_raster(OutputLayout(output_path).slic_chunk(tile, chunk), ids, grid.window_grid(window), nodata=0,
                 compress=compression, band_descriptions=["superpixel"])
    count = int(ids.max()) - first_id + 1 if ids.any() else 0
    LOGGER.info("%s chunk %d: %d superpixels", tile, chunk, count)


def merge_superpixels(tile: str, grid: dict, windows: list[list[int]], output_path: str,
                      compression: str = "ZSTD", remove_chunks: bool = False) -> None:
    """Assemble the superpixel chunks of a tile into ``features/<T>/tmp/SLIC_<T>.tif`` (uint32, nodata 0).

    Parameters
    ----------
    tile, grid
        The tile and its grid (:meth:`iota2.core.raster.Grid.to_dict`).
    windows
        ``[col_off, row_off, width, height]`` of each chunk, in chunk order.
    output_path
        ``chain.output_path``.
    compression
        ``chain.compression_algorithm``.
    remove_chunks
        Delete the chunk files once assembled (``chain.remove_tmp_files``).
    """
    grid = Grid.from_dict(grid)
    layout = OutputLayout(output_path)
    assemble_chunks([layout.slic_chunk(tile, chunk) for chunk in range(len(windows))], windows, layout.slic(tile),
                    grid.profile(1, SEGMENT_DTYPE, nodata=0, compress=compression), band_descriptions=["superpixel"])
    if remove_chunks:
        for chunk in range(len(windows)):
            layout.slic_chunk(tile, chunk).unlink(missing_ok=True)
