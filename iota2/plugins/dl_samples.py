"""Learning samples for deep learning, streamed from the samples files: nothing holds the whole table.

The classification chain writes one samples file per model and run
(``learningSamples/Samples_region_<R>_seed<S>_learn.sqlite`` or ``.parquet``, see
:meth:`iota2.core.layout.OutputLayout.samples`). A torch learner reads it through this module:

* :class:`SamplesFile` opens it without loading it: row count, feature names, the class and polygon (``originfid``)
  of every row (two integer columns, 8 bytes a row each), and :meth:`SamplesFile.iter_batches`, which reads the
  feature values of the rows asked for, a batch at a time;
* :func:`split_by_polygon` holds out a share of the polygons of each class to monitor training (no polygon in both
  parts: pixels of one polygon are too alike to measure generalisation);
* :func:`feature_statistics` computes the mean and standard deviation of each feature in one streamed pass
  (float64), saved next to a model as JSON (:meth:`FeatureStatistics.save`) and applied with
  :meth:`FeatureStatistics.normalise`;
* :class:`TorchSamplesDataset` is a ``torch.utils.data.IterableDataset`` yielding normalised float32 batches and
  class indices, shuffled by blocks of rows and within a buffer of blocks, the same order for the same seed and
  epoch.

Memory is bounded by the batch (and shuffle buffer), not by the file. For SQLite, rows are read by ``rowid`` ranges
(``BETWEEN``) or lists (``IN``) through the ``sqlite3`` module. For Parquet, the reading unit is the row group:
pyarrow decodes a whole row group even to return one batch of it (measured: a 200 000 x 200 row group takes about
540 MB of arrow memory to stream in batches of 1024 rows), so the bound is one row group, decoded
:data:`PARQUET_READ_COLUMNS` columns at a time into one float32 array; files written with pandas' defaults hold up to
1 048 576 rows in one group, files written with ``row_group_size=`` :data:`PARQUET_ROW_GROUP_ROWS` stream in bounded
memory.

torch is imported only when :class:`TorchSamplesDataset` is first used (the name is resolved by the module's
``__getattr__``): the rest of the module, and listing the plugins, works without torch installed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from iota2.core.errors import InputDataError

#: columns of a samples file that are not features (compared in lower case), besides the class field
NON_FEATURE_COLUMNS = frozenset({"ogc_fid", "geometry", "region", "originfid", "tile_o", "x", "y"})
#: the layer (table) of a SQLite samples file
SQLITE_TABLE = "output"
#: row-group size with which a Parquet samples file streams in bounded memory (about 30 MB for 455 features)
PARQUET_ROW_GROUP_ROWS = 16384
#: feature columns decoded together from a Parquet row group
PARQUET_READ_COLUMNS = 25
#: format tag of the statistics file
STATISTICS_FORMAT = "iota2-feature-statistics"


class SamplesBatch(NamedTuple):
    """Rows of a samples file read together.

    Attributes
    ----------
    features
        float32 ``(n, f)``, columns in :attr:`SamplesFile.feature_names` order (SQL NULL read as NaN).
    labels
        int64 ``(n,)``: the class field.
    polygons
        int64 ``(n,)``: ``originfid``, the ground-truth polygon of each sample.
    rows
        int64 ``(n,)``: the rows' positions in the file (0 is the first row).
    """

    features: np.ndarray
    labels: np.ndarray
    polygons: np.ndarray
    rows: np.ndarray


class SamplesFile:
    """A samples file opened for streaming: metadata now, feature values batch by batch.

    Parameters
    ----------
    path
        ``Samples_region_<R>_seed<S>_learn.sqlite`` (table ``output``) or ``.parquet``.
    label_field
        ``chain.data_field``: the class column (matched in lower case, as the chain writes it).
    feature_names
        The feature columns to read, in this order (the model's feature order); None: every column except
        :data:`NON_FEATURE_COLUMNS` and the class field, in the file's order.

    Attributes
    ----------
    path : Path
    format : str
        ``"sqlite"`` or ``"parquet"``.
    label_field : str
        The class column as named in the file.
    feature_names : list of str
    n_rows : int

    Raises
    ------
    InputDataError
        The file is missing, of another format, lacks the class field, ``originfid`` or any feature column, or lacks
        one of ``feature_names``; the message names the file and what to do.

    Notes
    -----
    Opening reads the class and ``originfid`` of every row (two int64 arrays) and, for SQLite, the ``rowid`` of
    every row; feature values are read only by :meth:`iter_batches`. A SQLite connection is opened per process
    (re-opened after a fork), so the object can be handed to ``DataLoader`` workers.
    """

    def __init__(self, path: str | Path, label_field: str, feature_names: Sequence[str] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputDataError(f"samples file {self.path} does not exist; run the 'sampling' group of the chain "
                                 "(chain.first_step: sampling) to write it")
        suffix = self.path.suffix.lower()
        if suffix not in (".sqlite", ".parquet"):
            raise InputDataError(f"samples file {self.path}: unknown format '{suffix}'; a samples file is .sqlite "
                                 "(table 'output') or .parquet (arg_train.samples_format)")
        self.format = suffix[1:]
        self._connection = None
        self._pid = None
        self._parquet = None
        self._group_cache = (None, None)
        columns = self._sqlite_columns() if self.format == "sqlite" else self._parquet_columns()
        by_lower = {name.lower(): name for name in columns}
        wanted = label_field.lower()
        if wanted not in by_lower:
            raise InputDataError(f"samples file {self.path} has no class column '{wanted}' (chain.data_field); its "
                                 f"columns start with {columns[:6]}: set chain.data_field to the class column")
        if "originfid" not in by_lower:
            raise InputDataError(f"samples file {self.path} has no 'originfid' column (the polygon of each sample); "
                                 "write it again with the chain's 'sampling' group")
        self.label_field = by_lower[wanted]
        self._polygon_field = by_lower["originfid"]
        available = [name for name in columns if name.lower() not in NON_FEATURE_COLUMNS | {wanted}]
        if feature_names is None:
            self.feature_names = available
        else:
            missing = [name for name in feature_names if name not in available]
            if missing:
                raise InputDataError(f"samples file {self.path} lacks feature column(s) {missing[:10]}"
                                     f"{' ...' if len(missing) > 10 else ''} ({len(missing)} of {len(feature_names)}); "
                                     "the model was trained on other features: run the sampling and learning groups "
                                     "again with the same configuration")
            self.feature_names = list(feature_names)
        if not self.feature_names:
            raise InputDataError(f"samples file {self.path} has no feature column (only {columns}); write it again "
                                 "with the chain's 'sampling' group")
        self._read_index()

    # ------------------------------------------------------------------------------------------------ metadata
    @property
    def n_features(self) -> int:
        """Number of feature columns read."""
        return len(self.feature_names)

    def labels(self) -> np.ndarray:
        """The class of every row (int64, file order)."""
        return self._labels

    def polygon_ids(self) -> np.ndarray:
        """The ``originfid`` (ground-truth polygon) of every row (int64, file order)."""
        return self._polygons

    def row_ranges(self) -> list[tuple[int, int]]:
        """``[start, stop)`` row ranges read as one unit: the row groups of a Parquet file, the whole file for
        SQLite (any rows of it are read at the same cost)."""
        return list(self._ranges)

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return f"SamplesFile({str(self.path)!r}, {self.n_rows} rows x {self.n_features} features)"

    # ------------------------------------------------------------------------------------------------ reading
    def iter_batches(self, rows: np.ndarray | None = None, batch_size: int = 1024) -> Iterator[SamplesBatch]:
        """Read ``rows`` in batches of ``batch_size``, in the order given.

        Parameters
        ----------
        rows
            Positions of rows in the file (0-based, repeats allowed); None: every row in file order.
        batch_size
            Rows per batch (the last one may be shorter).

        Yields
        ------
        SamplesBatch
            ``rows[k * batch_size:(k + 1) * batch_size]``, in that order.

        Notes
        -----
        Memory: one batch, plus for Parquet one decoded row group (kept while consecutive batches read it). Rows
        in increasing order read each SQLite page and Parquet row group once; any order is correct, but a Parquet
        file read in random order may decode a row group once per batch.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if rows is None:
            for start in range(0, self.n_rows, batch_size):
                yield self.read(np.arange(start, min(start + batch_size, self.n_rows), dtype=np.int64))
            return
        rows = self._check_rows(rows)
        for start in range(0, len(rows), batch_size):
            yield self.read(rows[start:start + batch_size])

    def read(self, rows: np.ndarray) -> SamplesBatch:
        """Read ``rows`` (positions in the file, any order, repeats allowed) at once; see :meth:`iter_batches`."""
        rows = self._check_rows(rows)
        unique, inverse = np.unique(rows, return_inverse=True)
        if self.format == "sqlite":
            features = self._read_sqlite(unique)
        else:
            features = self._read_parquet(unique)
        return SamplesBatch(features[inverse], self._labels[rows], self._polygons[rows], rows)

    def close(self) -> None:
        """Close the SQLite connection / Parquet reader (reopened if the file is read again)."""
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._parquet = None
        self._group_cache = (None, None)

    def __enter__(self) -> SamplesFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_connection=None, _pid=None, _parquet=None, _group_cache=(None, None))
        return state

    # ------------------------------------------------------------------------------------------------ internals
    def _check_rows(self, rows) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.ndim != 1 or not (rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"rows of {self.path} must be a 1-D array of integer positions, got {rows.dtype} "
                             f"{rows.shape}")
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise ValueError(f"rows of {self.path} must lie in [0, {self.n_rows}), got {rows.min()}..{rows.max()}")
        return rows

    def _sqlite(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            try:
                self._connection = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                                   check_same_thread=False)
            except sqlite3.Error as exc:
                raise InputDataError(f"samples file {self.path} cannot be opened by SQLite ({exc}); write it again "
                                     "with the chain's 'sampling' group") from exc
            self._pid = os.getpid()
        return self._connection

    def _query(self, sql: str, parameters=()) -> list:
        try:
            return self._sqlite().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise InputDataError(f"samples file {self.path} cannot be read ({type(exc).__name__}: {exc}); write it "
                                 "again with the chain's 'sampling' group") from exc

    def _sqlite_columns(self) -> list[str]:
        columns = [row[1] for row in self._query(f"PRAGMA table_info({SQLITE_TABLE})")]
        if not columns:
            raise InputDataError(f"samples file {self.path} has no table '{SQLITE_TABLE}'; it is not a samples file "
                                 "of the chain: write it again with the 'sampling' group")
        return columns

    def _parquet_file(self):
        import pyarrow.parquet as pq

        if self._parquet is None:
            try:
                self._parquet = pq.ParquetFile(self.path)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
                raise InputDataError(f"samples file {self.path} cannot be read as Parquet ({type(exc).__name__}: "
                                     f"{exc}); write it again with the chain's 'sampling' group") from exc
        return self._parquet

    def _parquet_columns(self) -> list[str]:
        return list(self._parquet_file().schema_arrow.names)

    def _read_index(self) -> None:
        if self.format == "sqlite":
            # by chunks: a list of Python tuples of every row would take about 150 bytes a row
            sql = f'SELECT rowid, "{self.label_field}", "{self._polygon_field}" FROM {SQLITE_TABLE} ORDER BY rowid'
            chunks = []
            try:
                cursor = self._sqlite().execute(sql)
                while chunk := cursor.fetchmany(65536):
                    chunk = np.array(chunk, dtype=object).reshape(-1, 3)
                    chunks.append([self._integers(chunk[:, j], name) for j, name in
                                   enumerate(("rowid", self.label_field, self._polygon_field))])
            except sqlite3.Error as exc:
                raise InputDataError(f"samples file {self.path} cannot be read ({type(exc).__name__}: {exc}); write "
                                     "it again with the chain's 'sampling' group") from exc
            self._rowids, labels, polygons = (np.concatenate([chunk[j] for chunk in chunks]) if chunks else
                                              np.empty(0, np.int64) for j in range(3))
            self._ranges = [(0, len(self._rowids))]
        else:
            parquet = self._parquet_file()
            parts = [parquet.read_row_group(group, columns=[self.label_field, self._polygon_field], use_threads=False)
                     for group in range(parquet.metadata.num_row_groups)]
            labels, polygons = ([np.asarray(part.column(j).to_numpy(zero_copy_only=False)) for part in parts]
                                for j in (0, 1))
            labels = np.concatenate(labels) if labels else np.empty(0, np.int64)
            polygons = np.concatenate(polygons) if polygons else np.empty(0, np.int64)
            sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.metadata.num_row_groups)]
            stops = np.cumsum(sizes, dtype=np.int64)
            self._ranges = [(int(stop - size), int(stop)) for size, stop in zip(sizes, stops)]
            self._group_stops = stops
        self._labels = self._integers(labels, self.label_field)
        self._polygons = self._integers(polygons, self._polygon_field)
        self.n_rows = len(self._labels)

    def _integers(self, values: np.ndarray, column: str) -> np.ndarray:
        try:
            if values.dtype == object:
                if any(value is None for value in values):
                    raise TypeError("empty (NULL) values")
                if not all(isinstance(value, int) for value in values):
                    raise TypeError("non-integer values")
                return values.astype(np.int64)
            if values.dtype.kind == "f" and (np.isnan(values).any() or (values != np.round(values)).any()):
                raise TypeError("empty or non-integer values")
            return values.astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"samples file {self.path}: column '{column}' must hold integers in every row "
                                 f"({exc}); write it again with the chain's 'sampling' group") from exc

    def _read_sqlite(self, unique: np.ndarray) -> np.ndarray:
        if unique.size == 0:
            return np.empty((0, self.n_features), np.float32)
        rowids = self._rowids[unique]
        columns = ", ".join(f'"{name}"' for name in self.feature_names)
        if rowids[-1] - rowids[0] + 1 == len(rowids):  # a contiguous range
            where, parameters = "rowid BETWEEN ? AND ?", (int(rowids[0]), int(rowids[-1]))
        else:  # integers written in the statement: no limit on the number of SQL variables
            where, parameters = f"rowid IN ({','.join(map(str, rowids.tolist()))})", ()
        fetched = self._query(f"SELECT rowid, {columns} FROM {SQLITE_TABLE} WHERE {where} ORDER BY rowid", parameters)
        values = np.array(fetched, dtype=np.float64).reshape(len(fetched), self.n_features + 1)  # NULL -> NaN
        if len(values) != len(rowids) or not np.array_equal(values[:, 0].astype(np.int64), rowids):
            raise InputDataError(f"samples file {self.path} changed while it was read (rows are missing); do not "
                                 "modify samples files during learning")
        return values[:, 1:].astype(np.float32)

    def _group_values(self, group: int) -> np.ndarray:
        if self._group_cache[0] == group:
            return self._group_cache[1]
        self._group_cache = (None, None)  # free the previous group before decoding the next one
        start, stop = self._ranges[group]
        values = np.empty((stop - start, self.n_features), np.float32)
        # a few columns at a time: decoding all at once takes arrow buffers of several times the values' size
        for first in range(0, self.n_features, PARQUET_READ_COLUMNS):
            table = self._parquet_file().read_row_group(
                group, columns=self.feature_names[first:first + PARQUET_READ_COLUMNS], use_threads=False)
            for j, column in enumerate(table.columns):
                if column.null_count:
                    column = column.fill_null(np.nan)
                values[:, first + j] = column.to_numpy(zero_copy_only=False)
            del table
        self._group_cache = (group, values)
        return values

    def _read_parquet(self, unique: np.ndarray) -> np.ndarray:
        out = np.empty((len(unique), self.n_features), np.float32)
        groups = np.searchsorted(self._group_stops, unique, side="right")
        bounds = np.flatnonzero(np.diff(groups)) + 1
        for part in np.split(np.arange(len(unique)), bounds):
            if part.size == 0:
                continue
            group = int(groups[part[0]])
            start = self._ranges[group][0]
            out[part] = self._group_values(group)[unique[part] - start]
        return out


# ---------------------------------------------------------------------------------------------------------------------
# train / validation split by polygon
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PolygonSplit:
    """Rows of a samples file split into a training and a validation part by polygon.

    Attributes
    ----------
    train, validation
        Row positions (int64, increasing).
    train_only_classes
        Classes with a single polygon: they cannot be split without a polygon in both parts, so all their rows are
        in ``train`` and the validation part has none of them.
    """

    train: np.ndarray
    validation: np.ndarray
    train_only_classes: list[int] = field(default_factory=list)


def split_by_polygon(labels: np.ndarray, polygons: np.ndarray, validation_ratio: float,
                     seed: int | None) -> PolygonSplit:
    """Hold out about ``validation_ratio`` of each class's samples, whole polygons at a time.

    Parameters
    ----------
    labels, polygons
        Class and ``originfid`` of every row (:meth:`SamplesFile.labels`, :meth:`SamplesFile.polygon_ids`).
    validation_ratio
        Share of each class's samples to hold out, in ``[0, 1)``.
    seed
        Seed of the draw (the same seed gives the same split); None: a fresh draw.

    Returns
    -------
    PolygonSplit

    Notes
    -----
    Per class, polygons are visited in a random order (a ``numpy.random.Generator`` seeded with
    ``SeedSequence(seed, spawn_key=(class,))``, so a class's draw does not depend on the other classes) and each is
    put in the validation part while that brings the class's validation count closer to ``validation_ratio`` of its
    samples. A class with two polygons or more keeps at least one in each part (when ``validation_ratio > 0``); a
    class with one polygon stays in training (:attr:`PolygonSplit.train_only_classes`). The achieved share per class
    is as close to the ratio as whole polygons allow. A polygon whose rows carry several classes belongs to its most
    frequent class.
    """
    labels = np.asarray(labels, dtype=np.int64)
    polygons = np.asarray(polygons, dtype=np.int64)
    if labels.shape != polygons.shape or labels.ndim != 1:
        raise ValueError(f"labels and polygons must be 1-D arrays of the same length, got {labels.shape} and "
                         f"{polygons.shape}")
    if not 0 <= validation_ratio < 1:
        raise ValueError(f"validation_ratio must be in [0, 1), got {validation_ratio}")
    polygon_ids, polygon_of_row = np.unique(polygons, return_inverse=True)
    # class of each polygon: its most frequent label
    pairs, pair_counts = np.unique(np.stack([polygon_of_row, labels]), axis=1, return_counts=True)
    order = np.lexsort((-pair_counts, pairs[0]))
    first = np.concatenate([[True], np.diff(pairs[0][order]) != 0])
    polygon_class = pairs[1][order][first]
    polygon_size = np.bincount(polygon_of_row, minlength=len(polygon_ids))
    in_validation = np.zeros(len(polygon_ids), dtype=bool)
    train_only = []
    for label in np.unique(polygon_class):
        members = np.flatnonzero(polygon_class == label)
        if len(members) < 2:
            train_only.append(int(label))
            continue
        if validation_ratio == 0:
            continue
        entropy = seed if seed is not None else None
        generator = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(int(label),)))
        members = generator.permutation(members)
        target = validation_ratio * polygon_size[members].sum()
        count = 0
        for position, member in enumerate(members[:-1]):  # the last polygon always stays in training
            size = polygon_size[member]
            if position == 0 or abs(count + size - target) < abs(count - target):
                in_validation[member] = True
                count += size
    validation_rows = in_validation[polygon_of_row]
    return PolygonSplit(np.flatnonzero(~validation_rows).astype(np.int64),
                        np.flatnonzero(validation_rows).astype(np.int64), train_only)


# ---------------------------------------------------------------------------------------------------------------------
# normalisation statistics
# ---------------------------------------------------------------------------------------------------------------------

@dataclass
class FeatureStatistics:
    """Mean and standard deviation of each feature, to normalise inputs as at training.

    Attributes
    ----------
    feature_names : list of str
    mean, std : numpy.ndarray
        float64 ``(f,)``; ``std`` is the population standard deviation (numpy's ``ddof=0``).
    count : int
        Number of samples they were computed on.
    """

    feature_names: list[str]
    mean: np.ndarray
    std: np.ndarray
    count: int

    @property
    def scale(self) -> np.ndarray:
        """``std`` with 1 for constant features (they normalise to 0 instead of dividing by 0)."""
        return np.where(self.std > 0, self.std, 1.0)

    def normalise(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean) / scale`` as float32 (computed in float64)."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(f"features must be (n, {len(self.feature_names)}), got {features.shape}")
        return ((features - self.mean) / self.scale).astype(np.float32)

    def save(self, path: str | Path) -> None:
        """Write the statistics as JSON (readable; floats written exactly), atomically."""
        from iota2.core.raster import atomic_output

        data = {"format": STATISTICS_FORMAT, "version": 1, "count": int(self.count),
                "feature_names": list(self.feature_names), "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in self.std]}
        with atomic_output(Path(path)) as tmp:
            tmp.write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> FeatureStatistics:
        """Read statistics written by :meth:`save`.

        Raises
        ------
        InputDataError
            The file is missing, not a statistics file, or inconsistent; the message names it.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != STATISTICS_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {STATISTICS_FORMAT!r}")
            names = [str(name) for name in data["feature_names"]]
            mean = np.asarray(data["mean"], dtype=np.float64)
            std = np.asarray(data["std"], dtype=np.float64)
            if not len(names) == len(mean) == len(std) or (std < 0).any():
                raise ValueError("feature_names, mean and std differ in length or a std is negative")
            return cls(names, mean, std, int(data["count"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputDataError(f"normalisation statistics {path} cannot be read ({type(exc).__name__}: {exc}); "
                                 "run the learning group again (chain.first_step: learning) to rewrite them") from exc


def feature_statistics(samples: SamplesFile, rows: np.ndarray | None = None,
                       batch_size: int = 16384) -> FeatureStatistics:
    """Mean and standard deviation of each feature over ``rows``, in one streamed pass.

    Parameters
    ----------
    samples
        The samples file.
    rows
        Row positions (e.g. :attr:`PolygonSplit.train`); None: every row.
    batch_size
        Rows read at once.

    Returns
    -------
    FeatureStatistics

    Raises
    ------
    InputDataError
        No row, or a feature value is NaN/NULL (a network cannot learn from it); the message names the file and
        the first such column.

    Notes
    -----
    Each batch's count, mean and sum of squared deviations are computed in float64 and merged with Chan et al.'s
    pairwise update, which is as accurate as numpy's two-pass computation on the whole table (relative difference
    about 1e-12 on the chain's files).
    """
    if rows is not None:
        rows = np.sort(np.asarray(rows, dtype=np.int64))  # file order: each page / row group read once
    count = 0
    mean = np.zeros(samples.n_features, np.float64)
    m2 = np.zeros(samples.n_features, np.float64)
    for batch in samples.iter_batches(rows, batch_size):
        values = batch.features.astype(np.float64)
        bad = np.isnan(values).any(axis=0)
        if bad.any():
            raise InputDataError(f"samples file {samples.path}: feature '{samples.feature_names[np.argmax(bad)]}' "
                                 f"has empty (NaN/NULL) values ({int(bad.sum())} column(s) affected); write the "
                                 "samples again with the chain's 'sampling' group")
        n = len(values)
        if n == 0:
            continue
        batch_mean = values.mean(axis=0)
        batch_m2 = ((values - batch_mean) ** 2).sum(axis=0)
        total = count + n
        delta = batch_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + batch_m2 + delta ** 2 * (count * n / total)
        count = total
    if count == 0:
        raise InputDataError(f"samples file {samples.path}: no sample to compute normalisation statistics on; the "
                             "model needs learning samples (check arg_train.sample_selection)")
    return FeatureStatistics(list(samples.feature_names), mean, np.sqrt(m2 / count), count)


# ---------------------------------------------------------------------------------------------------------------------
# shuffled batches and the torch dataset
# ---------------------------------------------------------------------------------------------------------------------

class ShuffledBatches:
    """Normalised batches of rows of a samples file, shuffled by blocks and within a buffer; numpy only.

    Parameters
    ----------
    samples
        The samples file.
    rows
        Row positions to go through each epoch (e.g. :attr:`PolygonSplit.train`); None: every row. Repeats are
        dropped.
    statistics
        Normalisation (:func:`feature_statistics` on the training rows); its feature names must be the file's.
    classes
        The model's classes, in output order: label ``classes[i]`` becomes index ``i``; None: the sorted labels of
        ``rows``.
    batch_size
        Rows per batch.
    shuffle
        Shuffle (True, for training) or go through the rows in file order (False, for validation).
    seed
        Seed of the shuffling: epoch ``e`` draws from ``SeedSequence(seed, spawn_key=(e,))``.
    block_rows
        Rows of a block: ``rows`` are cut, in file order, into blocks of consecutive rows (never across a Parquet
        row group).
    buffer_blocks
        Blocks read into the shuffle buffer at once.
    drop_last
        Drop the last batch of an epoch when it is shorter than ``batch_size``.
    in_memory
        Read the rows once into one float32 array (``len(rows) * n_features * 4`` bytes, half of what pandas holds
        in float64) and draw a full permutation each epoch: for training sets that fit in memory and many epochs
        (SQLite is read at a few thousand rows per second, see ``bench/README.md``).

    Notes
    -----
    Each epoch visits the blocks in a random order, ``buffer_blocks`` at a time: their rows are read (in file order,
    so each read is a range or a short list), permuted together and cut into batches (a remainder is carried into
    the next buffer, so every row appears exactly once per epoch and only the last batch may be short).

    Trade-off: a batch mixes rows of ``buffer_blocks`` random places of the file, not of the whole file. The chain
    writes samples in (tile, row, column) order, so a block holds a few neighbouring polygons: smaller blocks and
    more of them per buffer give better-mixed batches (closer to a full permutation) for the same memory,
    ``block_rows * buffer_blocks * n_features * 4`` bytes (16 x 1024 rows x 455 features: 30 MB); smaller blocks
    mean more, smaller reads (SQLite: one query per block; Parquet: a row group stays decoded while consecutive
    reads use it, so random blocks of a Parquet file with large row groups decode a group per block).
    """

    def __init__(self, samples: SamplesFile, rows: np.ndarray | None, statistics: FeatureStatistics,
                 classes: Sequence[int] | None = None, batch_size: int = 1024, shuffle: bool = True,
                 seed: int | None = 0, block_rows: int = 1024, buffer_blocks: int = 16, drop_last: bool = False,
                 in_memory: bool = False):
        if list(statistics.feature_names) != list(samples.feature_names):
            raise InputDataError(f"the normalisation statistics are of other features than samples file "
                                 f"{samples.path} ({len(statistics.feature_names)} against {samples.n_features}); "
                                 "compute them on this file (feature_statistics)")
        for name, value in (("batch_size", batch_size), ("block_rows", block_rows), ("buffer_blocks", buffer_blocks)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.samples = samples
        self.rows = np.arange(samples.n_rows, dtype=np.int64) if rows is None else \
            np.unique(samples._check_rows(rows))
        self.statistics = statistics
        labels = samples.labels()[self.rows]
        self.classes = np.unique(labels) if classes is None else np.asarray(classes, dtype=np.int64)
        if len(np.unique(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct, got {self.classes.tolist()}")
        unknown = np.setdiff1d(np.unique(labels), self.classes)
        if unknown.size:
            raise InputDataError(f"samples file {samples.path} has classes {unknown.tolist()} that are not among the "
                                 f"model's classes {self.classes.tolist()}; learn the model from this file")
        self._sorted_classes = np.sort(self.classes)
        self._class_index = np.argsort(self.classes)
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), seed
        self.block_rows, self.buffer_blocks, self.drop_last = int(block_rows), int(buffer_blocks), bool(drop_last)
        self.epoch = 0
        self._blocks = self._cut_blocks()
        self._memory = None
        if in_memory:
            features = np.empty((len(self.rows), samples.n_features), np.float32)
            position = 0
            for batch in samples.iter_batches(self.rows, batch_size=max(self.block_rows, 4096)):
                features[position:position + len(batch.rows)] = statistics.normalise(batch.features)
                position += len(batch.rows)
            self._memory = (features, self.class_indices(labels))

    def _cut_blocks(self) -> list[np.ndarray]:
        starts = np.array([start for start, _ in self.samples.row_ranges()], dtype=np.int64)
        unit = np.searchsorted(starts, self.rows, side="right")  # row group of each row
        blocks = []
        for part in np.split(self.rows, np.flatnonzero(np.diff(unit)) + 1):
            blocks.extend(part[i:i + self.block_rows] for i in range(0, len(part), self.block_rows) if len(part))
        return blocks

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` in the next iteration (call it at the start of each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(len(self.rows), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def class_indices(self, labels: np.ndarray) -> np.ndarray:
        """Output indices (int64) of ``labels`` (``classes[i]`` -> ``i``)."""
        return self._class_index[np.searchsorted(self._sorted_classes, labels)].astype(np.int64)

    def buffers(self, worker: int = 0, workers: int = 1) -> list[np.ndarray]:
        """The rows of each shuffle buffer of this epoch, in reading order, for ``worker`` of ``workers`` (buffers
        dealt in turn: every row is read by one worker)."""
        if self.shuffle:
            generator = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.epoch,)))
            order = generator.permutation(len(self._blocks))
        else:
            order = np.arange(len(self._blocks))
        buffers = [np.sort(np.concatenate([self._blocks[i] for i in order[k:k + self.buffer_blocks]]))
                   for k in range(0, len(order), self.buffer_blocks)]
        return buffers[worker::workers]

    def iter_numpy(self, worker: int = 0, workers: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(features float32 (b, f) normalised, class indices int64 (b,))`` for one epoch."""
        generator = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.epoch, 1)))
        if self._memory is not None:
            features, classes = self._memory
            order = generator.permutation(len(features)) if self.shuffle else np.arange(len(features))
            stop = len(self) * self.batch_size
            starts = list(range(0, min(stop, len(features)), self.batch_size))[worker::workers]
            for start in starts:
                chosen = order[start:start + self.batch_size]
                yield features[chosen], classes[chosen]
            return
        pending_x = np.empty((0, self.samples.n_features), np.float32)
        pending_y = np.empty(0, np.int64)
        for buffer in self.buffers(worker, workers):
            parts = list(self.samples.iter_batches(buffer, batch_size=max(self.block_rows, 4096)))
            x = np.concatenate([part.features for part in parts])
            y = self.class_indices(np.concatenate([part.labels for part in parts]))
            if self.shuffle:
                permutation = generator.permutation(len(x))
                x, y = x[permutation], y[permutation]
            x = np.concatenate([pending_x, self.statistics.normalise(x)])
            y = np.concatenate([pending_y, y])
            full = len(x) - len(x) % self.batch_size
            for start in range(0, full, self.batch_size):
                yield x[start:start + self.batch_size], y[start:start + self.batch_size]
            pending_x, pending_y = x[full:], y[full:]
        if len(pending_x) and not self.drop_last:
            yield pending_x, pending_y


_TORCH_DATASET = None


def _torch_dataset_class():
    """Create :class:`TorchSamplesDataset` (imports torch) once."""
    global _TORCH_DATASET
    if _TORCH_DATASET is not None:
        return _TORCH_DATASET
    try:
        import torch
        from torch.utils.data import IterableDataset, get_worker_info
    except ImportError as exc:
        raise ImportError("TorchSamplesDataset needs torch: install it with pip install 'iota2[dl]' "
                          "(torch==2.13.0)") from exc

    class TorchSamplesDataset(ShuffledBatches, IterableDataset):
        """A ``torch.utils.data.IterableDataset`` of normalised batches of a samples file.

        Takes the parameters of :class:`ShuffledBatches` and yields ``(features, classes)``: a float32 tensor
        ``(batch, f)`` and an int64 tensor ``(batch,)`` of class indices. It yields whole batches: use it with
        ``DataLoader(dataset, batch_size=None)``. With ``num_workers > 0`` the buffers are dealt to the workers in
        turn: each row is still read once per epoch, the order depends on how the loader interleaves workers, and
        each worker's last batch may be short (up to ``num_workers - 1`` batches more than ``len()``).
        Call :meth:`set_epoch` before each epoch for a new order; the same seed and epoch give the same batches.
        """

        def __iter__(self):
            info = get_worker_info()
            worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
            for x, y in self.iter_numpy(worker, workers):
                yield torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    TorchSamplesDataset.__module__ = __name__
    TorchSamplesDataset.__qualname__ = "TorchSamplesDataset"  # pickled by name (module __getattr__)
    _TORCH_DATASET = TorchSamplesDataset
    return TorchSamplesDataset


def __getattr__(name: str):
    if name == "TorchSamplesDataset":
        return _torch_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_random_samples(folder: Path, n_rows: int, n_features: int, seed: int = 0) -> dict[str, Path]:
    """A SQLite (table ``output`` as GDAL writes it) and a Parquet samples file holding the same random rows
    (standard normal features, classes 1-8, 500 polygons), written in blocks of 10 000 rows: files larger than
    memory for tests and benchmarks of streaming readers.

    Returns
    -------
    dict
        ``{"sqlite": path, "parquet": path}``.
    """
    import sqlite3

    import pandas as pd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"sentinel2_b{i}_20180105" for i in range(n_features)]
    paths = {"sqlite": folder / f"samples_{n_rows}x{n_features}.sqlite",
             "parquet": folder / f"samples_{n_rows}x{n_features}.parquet"}
    for path in paths.values():
        path.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    connection = sqlite3.connect(paths["sqlite"])
    connection.execute("CREATE TABLE 'output' ( \"ogc_fid\" INTEGER PRIMARY KEY AUTOINCREMENT, 'GEOMETRY' BLOB, "
                       "'code' BIGINT, 'region' VARCHAR, 'originfid' BIGINT, 'tile_o' VARCHAR, "
                       + ", ".join(f"'{name}' FLOAT" for name in names) + ")")
    insert = f"INSERT INTO output (code, region, originfid, tile_o, {', '.join(names)}) VALUES " \
             f"({', '.join('?' * (n_features + 4))})"
    frames = []
    for start in range(0, n_rows, 10_000):
        count = min(10_000, n_rows - start)
        values = rng.standard_normal((count, n_features), dtype=np.float32)
        codes, fids = rng.integers(1, 9, count), rng.integers(0, 500, count)
        connection.executemany(insert, ([int(c), "1", int(f), "T31TCJ", *row] for c, f, row
                                        in zip(codes, fids, values.astype(np.float64).tolist())))
        frames.append(pd.concat([pd.DataFrame({"code": codes, "region": "1", "originfid": fids, "tile_o": "T31TCJ"}),
                                 pd.DataFrame(values, columns=names)], axis=1))
    connection.commit()
    connection.close()
    table = pd.concat(frames, ignore_index=True)
    table["x"], table["y"] = 0.0, 0.0
    table.to_parquet(paths["parquet"], index=False, row_group_size=PARQUET_ROW_GROUP_ROWS)
    return paths
