"""Mosaic of tile rasters into one Cloud Optimized GeoTIFF, shared by the builders (class maps, validity, feature
maps).

A final map is assembled as a plain tiled GeoTIFF under a temporary name, then copied by GDAL's COG driver
(:func:`to_cog`) under a second temporary name that is renamed to the map's name when complete: tiles of
:data:`COG_BLOCKSIZE` pixels, overviews down to one tile, the full-resolution image first and the "ghost area"
``LAYOUT=COG`` that COG readers check, the compression of ``chain.compression_algorithm`` and the nodata value.
Chunks and tile maps stay plain GeoTIFFs (they are written here only when they are final).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.merge import merge

from iota2.core.errors import OutputWriteError
from iota2.core.raster import atomic_output, temporary_path
from iota2.core.scheduler import task_threads

COG_BLOCKSIZE = 256
"""Tile size (pixels) of the final maps and of their overviews; overviews are made until one fits in a tile."""

COG_CACHE_MB = 64
"""GDAL block cache (MB) while a COG is written: its overviews are made block by block, so a larger cache only
grows the memory of the task (GDAL's default, 5 % of the RAM, took 550 MB on a 10000 x 10000 map)."""
COG_CACHE_BYTES = COG_CACHE_MB * 2**20
""":data:`COG_CACHE_MB` in bytes, as ``rasterio.Env(GDAL_CACHEMAX=...)`` takes an integer (64 would be 64 bytes:
every block read again for each overview, 5x slower)."""

COG_TMP_ZSTD_LEVEL = 1
"""ZSTD level of the temporary overview file GDAL's COG driver writes before the COG itself (GDAL compresses it
with ZSTD at its default level, 9, whatever the map's compression; its ``ZSTD_LEVEL_OVERVIEW`` setting lowers it).
Measured on a 10000 x 10000 uint16 map with average overviews: 4.1 s at level 9, 2.6 s at level 1, same COG.
That setting also sets the level of a ZSTD COG's own overviews: a ZSTD map's temporary file therefore takes the
map's level (GDAL's default when none is given), and this level applies to the other compressions only."""

COG_READ_THREADS = 1
"""GDAL's ``GDAL_NUM_THREADS`` while a COG is written: the source is read and the overviews computed in one thread,
the blocks compressed on the task's threads (``NUM_THREADS``). Without it GDAL also reads a VRT source in several
threads, each opening every chunk again: the COG of a 1000 x 1000 px, 37-band VRT of 16 chunks took 2.8 s on two
threads against 1.4 s with it (a GeoTIFF source: 1.44 s either way)."""

OVERVIEW_RESAMPLING = ("nearest", "mode", "average")
"""Overview resampling methods :func:`mosaic_files` accepts: nearest or mode for class maps (a class is never
averaged), average for confidence, validity and features."""


def mosaic_files(sources: list[Path], target: Path, dtype: str, compress: str, nodata=0,
                 colormap: dict | None = None, band_descriptions: list[str] | None = None,
                 overview_resampling: str = "average", cog: bool = True, zstd_level: int | None = None) -> None:
    """Merge rasters on one CRS and resolution (first source wins where they overlap) into a Cloud Optimized
    GeoTIFF, atomically.

    A single source (one tile: the common case) that already has the map's type, no-data value and band
    descriptions (a VRT of the tile's chunks) is encoded into the COG directly; one already in the output's layout
    is copied, not decoded and compressed again, before the COG copy. Rasters of several bands are merged band by
    band (rasterio merges by blocks, and GDAL makes the overviews by blocks, so the memory used does not grow with
    the mosaic).

    Parameters
    ----------
    sources
        The tile rasters, all with the same number of bands.
    target
        The mosaic (written under a temporary name, renamed when complete).
    dtype
        Pixel type of the mosaic.
    compress
        ``chain.compression_algorithm`` (``"NONE"`` for none).
    nodata
        Value of the pixels no source covers (and of the sources' pixels to ignore).
    colormap
        Palette of band 1, or None.
    band_descriptions
        One description per band (e.g. feature names), or None to keep none.
    overview_resampling
        One of :data:`OVERVIEW_RESAMPLING`.
    cog
        False: a plain tiled GeoTIFF (no overviews).
    zstd_level
        ZSTD level of the mosaic (GDAL's default, 9, when None).

    Raises
    ------
    OutputWriteError
        When the disk is full or the file system refuses the COG driver's temporary file; nothing is left under
        ``target``'s name.
    """
    if overview_resampling not in OVERVIEW_RESAMPLING:
        raise ValueError(f"overview_resampling must be one of {OVERVIEW_RESAMPLING}, not {overview_resampling!r}")
    target = Path(target)
    datasets = [rasterio.open(path) for path in sources]
    try:
        profile = {"driver": "GTiff", "tiled": True, "blockxsize": COG_BLOCKSIZE, "blockysize": COG_BLOCKSIZE,
                   "BIGTIFF": "IF_SAFER", "dtype": dtype}
        if compress.upper() != "NONE":
            profile["compress"] = compress.lower()
            if zstd_level is not None and compress.upper() == "ZSTD":
                profile["zstd_level"] = zstd_level
        with atomic_output(target) as tmp:
            if cog and len(datasets) == 1 and _ready_for_cog(datasets[0], dtype, nodata, colormap, band_descriptions):
                # one source that has the map's type, nodata and descriptions (a tile's VRT of its chunks): the
                # COG is encoded from it directly, without a plain copy first
                _cog_copy(sources[0], tmp, target, compress, overview_resampling, zstd_level)
                return
            with _staging(tmp, cog) as plain:
                if len(datasets) == 1 and _same_layout(datasets[0], profile):
                    shutil.copyfile(sources[0], plain)
                    with rasterio.open(plain, "r+") as dst:
                        dst.nodata = nodata
                else:
                    merge(datasets, nodata=nodata, method="first", dst_path=plain, dst_kwds=profile)
                if colormap or band_descriptions:
                    with rasterio.open(plain, "r+") as dst:
                        if colormap:
                            dst.write_colormap(1, colormap)
                        for index, description in enumerate(band_descriptions or [], start=1):
                            dst.set_band_description(index, description)
                if cog:
                    _cog_copy(plain, tmp, target, compress, overview_resampling, zstd_level)
    finally:
        for dataset in datasets:
            dataset.close()


def to_cog(source: str | Path, target: str | Path, compress: str, overview_resampling: str = "average",
           zstd_level: int | None = None) -> None:
    """Copy a raster into a Cloud Optimized GeoTIFF with overviews, atomically (palette, nodata, band
    descriptions and pixel type are kept).

    Parameters
    ----------
    source
        Any raster GDAL reads.
    target
        The COG (written under a temporary name, renamed when complete).
    compress
        ``chain.compression_algorithm`` (``"NONE"`` for none).
    overview_resampling
        One of :data:`OVERVIEW_RESAMPLING`.
    zstd_level
        ZSTD level (GDAL's default, 9, when None).

    Raises
    ------
    OutputWriteError
        When the disk is full or the file system refuses the COG driver's temporary file.
    """
    if overview_resampling not in OVERVIEW_RESAMPLING:
        raise ValueError(f"overview_resampling must be one of {OVERVIEW_RESAMPLING}, not {overview_resampling!r}")
    with atomic_output(target) as tmp:
        _cog_copy(source, tmp, Path(target), compress, overview_resampling, zstd_level)


@contextlib.contextmanager
def _staging(tmp: Path, cog: bool):
    """The plain GeoTIFF the COG is copied from (a second temporary name, removed afterwards), or ``tmp`` itself
    without COG."""
    if not cog:
        yield tmp
        return
    plain = temporary_path(tmp.with_name(tmp.stem + "_plain" + tmp.suffix))
    try:
        yield plain
    finally:
        for path in [plain, *plain.parent.glob(plain.name + ".*")]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def overview_factors(width: int, height: int, blocksize: int = COG_BLOCKSIZE) -> list[int]:
    """Overview factors of a COG, as GDAL's COG driver chooses them: 2, 4, 8, ... until the overview fits in one
    block in both directions (none for a map of one block)."""
    factors = []
    factor = 1
    while width > blocksize or height > blocksize:
        factor *= 2
        width, height = (width + 1) // 2, (height + 1) // 2
        factors.append(factor)
    return factors


def exact_overview_factors(width: int, height: int, blocksize: int = COG_BLOCKSIZE) -> list[int]:
    """The factors of :func:`overview_factors` that divide both sizes: the levels whose every pixel is the mean of
    a whole block, which chunks whose rows start on a multiple of the largest can make on their own
    (:func:`iota2.core.raster.average_levels`)."""
    return [factor for factor in overview_factors(width, height, blocksize) if width % factor == 0
            and height % factor == 0]


def _single_source_vrt(source: Path, target: Path, overview_level: int | None = None,
                       overviews: list[str] = ()) -> Path:
    """A VRT of the whole of ``source`` (absolute path), or of its overview ``overview_level`` (GDAL's
    ``OVERVIEW_LEVEL`` open option), with ``overviews`` (GDAL dataset names) as its explicit overviews."""
    import xml.etree.ElementTree as ElementTree

    from iota2.core.raster import Grid, vrt_band, vrt_dataset

    options = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(source, **options) as src:
        grid, dtypes, nodata, descriptions = Grid.from_dataset(src), src.dtypes, src.nodata, src.descriptions
    width, height = grid.width, grid.height
    root = vrt_dataset(grid)
    for band in range(1, len(dtypes) + 1):
        element = vrt_band(root, band, dtypes[band - 1], descriptions[band - 1], nodata)
        simple = ElementTree.SubElement(element, "SimpleSource")
        ElementTree.SubElement(simple, "SourceFilename", relativeToVRT="0").text = str(Path(source).resolve())
        if overview_level is not None:
            open_options = ElementTree.SubElement(simple, "OpenOptions")
            ElementTree.SubElement(open_options, "OOI", key="OVERVIEW_LEVEL").text = str(overview_level)
        ElementTree.SubElement(simple, "SourceBand").text = str(band)
        ElementTree.SubElement(simple, "SrcRect", xOff="0", yOff="0", xSize=str(width), ySize=str(height))
        ElementTree.SubElement(simple, "DstRect", xOff="0", yOff="0", xSize=str(width), ySize=str(height))
        for name in overviews:
            overview = ElementTree.SubElement(element, "Overview")
            ElementTree.SubElement(overview, "SourceFilename", relativeToVRT="0").text = name
            ElementTree.SubElement(overview, "SourceBand").text = str(band)
    ElementTree.ElementTree(root).write(target, encoding="utf-8", xml_declaration=False)
    return target


def _cog_copy(source: str | Path, tmp: Path, target: Path, compress: str, overview_resampling: str,
              zstd_level: int | None) -> None:
    with rasterio.open(source) as src:
        bands, width, height, existing = src.count, src.width, src.height, src.overviews(1)
    if bands > 1:
        _band_interleaved_cog(source, tmp, target, compress, overview_resampling, zstd_level,
                              overview_factors(width, height), existing)
        return
    options = {"COMPRESS": compress.upper(), "BLOCKSIZE": COG_BLOCKSIZE, "BIGTIFF": "IF_SAFER",
               "OVERVIEW_RESAMPLING": overview_resampling.upper(), "OVERVIEWS": "IGNORE_EXISTING"}
    if zstd_level is not None and compress.upper() == "ZSTD":
        options["LEVEL"] = zstd_level
    threads = task_threads()
    if threads > 1 and compress.upper() != "NONE":
        options["NUM_THREADS"] = threads  # blocks compressed in parallel on the task's share of the cores
    try:
        with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_BYTES, GDAL_NUM_THREADS=COG_READ_THREADS,
                          **_overview_zstd_level(compress, zstd_level)):
            rasterio.shutil.copy(str(source), str(tmp), driver="COG", **options)
    except (rasterio.errors.RasterioError, CPLE_BaseError) as exc:
        if ".ovr.tmp" in str(exc) and "No space left" not in str(exc):
            raise OutputWriteError(
                f"'{target}' was not written: GDAL's COG driver could not write its temporary overview file "
                f"({exc}); the file system of {target.parent} (or the folder of CPL_TMPDIR, when set) refuses it: "
                "set the environment variable CPL_TMPDIR to a local folder with free space (or choose another "
                "chain.output_path) and run again with -restart") from exc
        if isinstance(exc, rasterio.errors.RasterioError):
            raise
        raise rasterio.errors.RasterioIOError(f"writing '{target.name}' failed: {exc}") from exc  # disk full ...


def _band_interleaved_cog(source: str | Path, tmp: Path, target: Path, compress: str, overview_resampling: str,
                          zstd_level: int | None, factors: list[int], existing: list[int] = ()) -> None:
    """A COG of several bands stored band after band (GDAL 3.10's COG driver writes them pixel-interleaved only).

    GDAL makes the overviews of a VRT of the source (a temporary file beside ``tmp``, so nothing is written beside a
    source this run did not create), then its GTiff driver copies the VRT with them: every directory first, then the
    overviews' blocks from the smallest, then the image's, the layout a COG reader expects (GDAL reports no
    ``LAYOUT=COG`` for it, the mark only its COG driver writes: see :func:`iota2.core.stac.is_cog`).

    Why: a pixel-interleaved block holds every band, so reading one feature of a map of hundreds decodes them all,
    and GDAL's COG driver needs a row of such blocks in its cache while it writes; with 64 MB, a 2000 x 2000 px map
    of 37 features took 17.5 s (7 s with 256 MB), against 5 s this way with 64 MB.

    A source that has the first of its levels already (``existing``: a features map's tile VRT, whose chunks made
    their average levels) keeps them: GDAL makes only the deeper ones, from the deepest it has (GDAL cascades, so
    they are what it would make from the full map), and the COG is copied with all of them.
    """
    from rasterio.enums import Resampling

    levels = temporary_path(tmp.with_name(tmp.stem + "_levels.vrt"))
    options = {"TILED": "YES", "BLOCKXSIZE": COG_BLOCKSIZE, "BLOCKYSIZE": COG_BLOCKSIZE, "INTERLEAVE": "BAND",
               "COMPRESS": compress.upper(), "BIGTIFF": "IF_SAFER", "COPY_SRC_OVERVIEWS": "YES"}
    if zstd_level is not None and compress.upper() == "ZSTD":
        options["ZSTD_LEVEL"] = zstd_level
    threads = task_threads()
    if threads > 1 and compress.upper() != "NONE":
        options["NUM_THREADS"] = threads
    existing = list(existing or [])
    keep = bool(existing) and overview_resampling == "average" and factors[:len(existing)] == existing
    deepest = levels.with_name(levels.stem + "_deepest.vrt")
    made = [levels, deepest] + [levels.with_name(f"{levels.stem}_{index}.vrt") for index in range(len(existing))]
    try:
        with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_BYTES, GDAL_NUM_THREADS=COG_READ_THREADS,
                          COMPRESS_OVERVIEW="ZSTD", ZSTD_LEVEL_OVERVIEW=COG_TMP_ZSTD_LEVEL, INTERLEAVE_OVERVIEW="BAND"):
            if keep:
                names = [str(_single_source_vrt(Path(source), made[2 + index], overview_level=index))
                         for index in range(len(existing))]
                deeper = [factor // existing[-1] for factor in factors[len(existing):]]
                if deeper:
                    _single_source_vrt(Path(source), deepest, overview_level=len(existing) - 1)
                    with rasterio.open(deepest, "r+") as dataset:
                        dataset.build_overviews(deeper, Resampling[overview_resampling])
                    names += [f"GTIFF_DIR:{index}:{deepest.resolve()}.ovr" for index in range(1, len(deeper) + 1)]
                _single_source_vrt(Path(source), levels, overviews=names)
            else:
                rasterio.shutil.copy(str(Path(source).resolve()), str(levels), driver="VRT")
                if factors:
                    with rasterio.open(levels, "r+") as dataset:
                        dataset.build_overviews(factors, Resampling[overview_resampling])
        with rasterio.Env(GDAL_CACHEMAX=COG_CACHE_BYTES, GDAL_NUM_THREADS=COG_READ_THREADS,
                          **({"ZSTD_LEVEL_OVERVIEW": zstd_level} if zstd_level is not None else {})):
            rasterio.shutil.copy(str(levels), str(tmp), driver="GTiff", **options)
    except CPLE_BaseError as exc:
        raise rasterio.errors.RasterioIOError(f"writing '{target.name}' failed: {exc}") from exc  # disk full ...
    finally:
        for path in made:
            for name in (path, path.with_name(path.name + ".ovr"), path.with_name(path.name + ".aux.xml")):
                with contextlib.suppress(FileNotFoundError):
                    name.unlink()


def _overview_zstd_level(compress: str, zstd_level: int | None) -> dict:
    """GDAL's ``ZSTD_LEVEL_OVERVIEW`` while a COG is written (see :data:`COG_TMP_ZSTD_LEVEL`)."""
    if compress.upper() != "ZSTD":
        return {"ZSTD_LEVEL_OVERVIEW": COG_TMP_ZSTD_LEVEL}  # the temporary file only
    return {} if zstd_level is None else {"ZSTD_LEVEL_OVERVIEW": zstd_level}


def _ready_for_cog(dataset, dtype: str, nodata, colormap: dict | None, band_descriptions: list[str] | None) -> bool:
    """Whether ``dataset`` can be copied into the COG as it is: every band of type ``dtype`` with ``nodata`` as its
    no-data value, the wanted band descriptions (or none asked for), and no palette to add."""
    return (colormap is None and all(kind == dtype for kind in dataset.dtypes) and dataset.nodata is not None
            and float(dataset.nodata) == float(nodata)
            and (band_descriptions is None or list(dataset.descriptions) == list(band_descriptions)))


def _same_layout(dataset, profile: dict) -> bool:
    """Whether ``dataset`` is a GeoTIFF with the type, tiling and compression of ``profile``."""
    source = dataset.profile
    return (source["driver"] == "GTiff" and source["dtype"] == profile["dtype"] and bool(source.get("tiled"))
            and source.get("blockxsize") == profile["blockxsize"] and source.get("blockysize") == profile["blockysize"]
            and str(source.get("compress") or "none").lower() == str(profile.get("compress") or "none").lower()
            and dataset.colorinterp[0].name != "palette")
