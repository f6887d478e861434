"""The OTB learner (``otb``): OTB's TrainVectorClassifier / ImageClassifier, selected by ``arg_train.classifier``.

``arg_train.classifier`` names one of the classifiers of the installed OTB (Debian's OTB 8.1: ``libsvm``, ``boost``,
``dt``, ``ann``, ``bayes``, ``rf`` (OpenCV's random forest), ``knn``; no ``sharkrf``: Debian builds OTB without
Shark) and ``arg_train.otb_classifier_options`` its parameters by their OTB names, e.g.
``{"classifier.rf.nbtrees": 100, "classifier.rf.max": 25}`` (the 2020 string of flags
``" -classifier.rf.min 5 -classifier.rf.max 25 "`` is read too). As iota2: ``libsvm`` learns on features centred and
scaled by their mean and standard deviation over the samples (an ``-io.stats`` XML, also given to ImageClassifier
as ``-imstat``) and with ``classifier.libsvm.prob`` forced; ``rf`` defaults to ``classifier.rf.acc 0`` (OpenCV
stops adding trees early otherwise); ``-rand`` is the model's seed, so a run is reproducible.

Probabilities: no classifier of Debian's OTB gives per-class probabilities (``-probamap`` needs Shark's random
forest), so :meth:`OtbLearner.predict_proba` builds rows from OTB's label and confidence (``-confmap``): the label's
column holds the confidence (scaled to [0, 1]: ``knn`` divides its neighbour count by ``k``, ``ann`` halves the gap
between its two best outputs; raised just above ``1 / n_classes`` when lower, so it stays the arg-max) and the other
columns share the rest equally. ``dt`` and ``bayes`` have no confidence: the label's column is 1. The chain's label is
therefore OTB's label and its confidence OTB's confidence.

Files of a model ``model/model_<R>_seed_<S>``: ``.txt`` (OTB's model file, text) and, for ``libsvm``, ``_stats.xml``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sqlite3
import tempfile
from pathlib import Path

import numpy as np

from iota2.core.errors import ConfigError, InputDataError
from iota2.core.learner import Learner, LearningSamples, Resources, check_file, file_digest, refuse_model
from iota2.builders.i2_classification import OTB_EQUIVALENTS
from iota2.core.raster import atomic_output

LOGGER = logging.getLogger(__name__)

OPTIONS_KEY = "arg_train.otb_classifier_options"
NATIVE_EQUIVALENTS = OTB_EQUIVALENTS
"""scikit-learn model types close to each OTB classifier (named in the error when OTB is missing)."""
OTB_CLASSIFIER_NAMES = frozenset({*NATIVE_EQUIVALENTS, "sharkkm", "gbt"})
"""Every classifier name of TrainVectorClassifier in OTB's builds (Debian's lacks Shark's: sharkrf, sharkkm)."""
NO_CONFIDENCE = ("dt", "bayes")
"""Classifiers whose models give no confidence in OTB 8.1 (ImageClassifier disables ``-confmap``)."""
LABEL_FIELD = "code"
PREDICT_WIDTH = 2048
"""Feature rows are classified as an image of this many columns."""


def _classifier_names(otb) -> list[str]:
    return otb.Registry.CreateApplication("TrainVectorClassifier").GetChoiceKeys("classifier")


def parse_options(options) -> dict:
    """``otb_classifier_options`` as ``{OTB key: value}``: a mapping, or the 2020 string of ``-key value`` flags."""
    if options is None:
        return {}
    if isinstance(options, dict):
        return {str(k).lstrip("-"): v for k, v in options.items()}
    if isinstance(options, str):
        parsed, key = {}, None
        for word in shlex.split(options):
            if re.match(r"^-[A-Za-z]", word):
                key = word[1:]
                parsed[key] = []
            elif key is None:
                raise ConfigError(f"{OPTIONS_KEY}: {options!r} must start with an option key (-classifier.rf.max 25) "
                                  "or be a mapping {'classifier.rf.max': 25}")
            else:
                parsed[key].append(word)
        return {k: (v[0] if len(v) == 1 else v if v else True) for k, v in parsed.items()}
    raise ConfigError(f"{OPTIONS_KEY}: expected a mapping of OTB parameters (e.g. {{'classifier.rf.nbtrees': 100}}), "
                      f"got {type(options).__name__}")


def _set_option(app, key: str, value) -> None:
    if isinstance(value, bool):
        value = "true" if value else "false"
    app.SetParameterValue(key, value)


class OtbLearner(Learner):
    """An OTB classifier (``arg_train.classifier``) trained by TrainVectorClassifier and applied by ImageClassifier.

    Parameters
    ----------
    settings
        :meth:`settings_from_config`: ``classifier`` (an OTB classifier name) and ``options`` (``{OTB key: value}``).
    """

    name = "otb"

    def __init__(self, settings: dict):
        super().__init__(settings)
        self._model_path: Path | None = None
        self._stats_path: Path | None = None
        self._workdir = None  # holds the files of a model fitted here until it is saved

    # ------------------------------------------------------------------ configuration
    @classmethod
    def selected_by(cls, config) -> bool:
        """``arg_train.classifier`` names one of OTB's classifiers (:data:`OTB_CLASSIFIER_NAMES`; Shark's included,
        refused with the list of those installed); other names are left to other learners."""
        return str(config["arg_train"].get("classifier") or "").lower() in OTB_CLASSIFIER_NAMES

    @classmethod
    def settings_from_config(cls, config) -> dict:
        """Check the classifier name and its options against the installed OTB.

        Raises
        ------
        OtbUnavailableError
            OTB or the binding is missing (with the install command and the native alternative).
        ConfigError
            An unknown classifier (``sharkrf`` included), or an option key the classifier does not have, or a value
            OTB refuses.
        """
        from iota2.plugins.otb_backend import OtbUnavailableError, load_otb

        train = config["arg_train"]
        classifier = str(train["classifier"]).strip().lower()
        try:
            otb = load_otb()
        except OtbUnavailableError as exc:
            native = NATIVE_EQUIVALENTS.get(classifier, "RandomForestClassifier")
            raise OtbUnavailableError(f"arg_train.classifier = {train['classifier']!r} needs OTB: {exc}; or remove "
                                      "arg_train.classifier and use the native equivalent: scikit_models_parameters: "
                                      f"{{model_type: {native}}}") from exc
        available = _classifier_names(otb)
        if classifier not in available:
            why = " (Debian's OTB is built without Shark)" if classifier.startswith("shark") else ""
            native = NATIVE_EQUIVALENTS.get(classifier, "RandomForestClassifier")
            raise ConfigError(f"arg_train.classifier: {train['classifier']!r} is not a classifier of the installed OTB"
                              f"{why}; available: {', '.join(available)}; or remove arg_train.classifier and use the "
                              f"native equivalent: scikit_models_parameters: {{model_type: {native}}}")
        options = parse_options(train.get("otb_classifier_options"))
        app = otb.Registry.CreateApplication("TrainVectorClassifier")
        app.SetParameterString("classifier", classifier)
        prefix = f"classifier.{classifier}."
        keys = [k for k in app.GetParametersKeys() if k.startswith(prefix)]
        for key, value in options.items():
            if key not in keys:
                raise ConfigError(f"{OPTIONS_KEY}: {key!r} is not an option of the OTB classifier {classifier}; its "
                                  f"options: {', '.join(keys) or 'none'}")
            try:
                _set_option(app, key, value)
            except (otb.OtbError, ValueError, TypeError) as exc:
                raise ConfigError(f"{OPTIONS_KEY}.{key}: OTB refuses {value!r} ({exc})") from exc
        return {"classifier": classifier, "options": options}

    def resources(self) -> Resources:
        """OTB's filters use every thread the task is given."""
        return Resources(threads=os.cpu_count() or 1)

    # ------------------------------------------------------------------ fit
    def fit(self, samples: LearningSamples) -> dict:
        """Write the samples to a temporary SQLite file and run TrainVectorClassifier on it.

        Raises
        ------
        InputDataError
            Fewer than two classes, missing feature columns, or OTB failed on the samples (OTB's message).
        """
        from iota2.builders.samples import read_learning_samples
        from iota2.core.scheduler import task_threads
        from iota2.plugins.otb_backend import load_otb

        otb = load_otb()
        table, labels = read_learning_samples(samples)
        classes = np.unique(labels)
        features = table[samples.feature_names].to_numpy(np.float64)
        classifier = self.settings["classifier"]
        options = dict(self.settings.get("options") or {})
        if classifier == "rf":
            options.setdefault("classifier.rf.acc", 0)
        if classifier == "libsvm":
            options["classifier.libsvm.prob"] = True
        seed = samples.seed if samples.seed is not None else int(np.random.default_rng().integers(2**31 - 1))
        self._workdir = tempfile.TemporaryDirectory(prefix="iota2_otb_")
        work = Path(self._workdir.name)
        columns = [f"value_{i}" for i in range(features.shape[1])]
        database = work / "samples.sqlite"
        with sqlite3.connect(database) as connection:
            connection.execute(f"CREATE TABLE output ({LABEL_FIELD} INTEGER, "
                               + ", ".join(f"{c} REAL" for c in columns) + ")")
            connection.executemany(f"INSERT INTO output VALUES ({', '.join('?' * (len(columns) + 1))})",
                                   ((int(lab), *row) for lab, row in zip(labels.tolist(), features.tolist())))
        connection.close()
        otb.set_threads(task_threads())
        app = otb.Registry.CreateApplication("TrainVectorClassifier")
        app.SetParameterStringList("io.vd", [str(database)])
        app.SetParameterString("cfield", LABEL_FIELD)
        app.SetParameterStringList("feat", columns)
        app.SetParameterString("classifier", classifier)
        for key, value in options.items():
            _set_option(app, key, value)
        app.SetParameterInt("rand", int(seed) % (2**31 - 1))
        self._stats_path = None
        if classifier == "libsvm":
            self._stats_path = work / "stats.xml"
            write_statistics(self._stats_path, features)
            app.SetParameterString("io.stats", str(self._stats_path))
        self._model_path = work / "model.txt"
        app.SetParameterString("io.out", str(self._model_path))
        if classifier == "boost" and len(classes) > 2:
            raise ConfigError(f"arg_train.classifier: OTB's boost (OpenCV's boosting) separates two classes only, and "
                              f"the model of region {samples.region} has {len(classes)} ({classes.tolist()}); choose "
                              "another classifier (rf, libsvm, knn ...)")
        try:
            otb.seed_random(int(seed) % (2**31 - 1))
            app.ExecuteAndWriteOutput()
        except otb.OtbError as exc:
            raise InputDataError(f"OTB TrainVectorClassifier ({classifier}) failed on {samples.path}: {exc}") from exc
        self.classes_ = classes.astype(np.int64)
        self.feature_names = list(samples.feature_names)
        LOGGER.info("region %s run %d: OTB %s fitted on %d samples x %d features", samples.region, samples.run,
                    classifier, len(labels), len(columns))
        values, counts = np.unique(labels, return_counts=True)
        return {"classifier": classifier, "otb_options": {k: v for k, v in options.items()},
                "n_samples": int(len(labels)), "n_features": len(columns), "seed": int(seed),
                "samples_per_class": {int(k): int(v) for k, v in zip(values, counts)}}

    # ------------------------------------------------------------------ predict
    def predict_proba(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Rows built from OTB's label and confidence (see the module's documentation), ``(n, n_classes)`` float64.

        Non-finite features are replaced by 0 before OTB sees them.
        """
        if self._model_path is None:
            raise ValueError("predict_proba of an OTB learner that was neither fitted nor loaded")
        n_classes = len(self.classes_)
        n = len(features)
        if n == 0:
            return np.zeros((0, n_classes), np.float64)
        labels, confidence = self.predict_label_confidence(features, threads)
        columns = np.searchsorted(self.classes_, labels)
        columns = np.clip(columns, 0, n_classes - 1)
        unknown = self.classes_[columns] != labels
        if unknown.any():
            raise InputDataError(f"OTB model {self._model_path} gave label(s) {np.unique(labels[unknown])[:5].tolist()} "
                                 f"that are not among its classes {self.classes_.tolist()}; run the 'learning' group "
                                 "again")
        top = np.maximum(np.clip(confidence, 0.0, 1.0), 1.0 / n_classes + 1e-6)
        proba = np.repeat(((1.0 - top) / (n_classes - 1))[:, None], n_classes, axis=1)
        proba[np.arange(n), columns] = top
        return proba

    def predict_label_confidence(self, features: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """OTB's label (int64) and confidence (scaled to [0, 1]; 1 for classifiers without one) of feature rows."""
        from iota2.plugins.otb_backend import load_otb

        otb = load_otb()
        classifier = self.settings["classifier"]
        n = len(features)
        width = min(n, PREDICT_WIDTH)
        rows = -(-n // width)
        block = np.zeros((rows * width, features.shape[1]), np.float32)
        block[:n] = np.nan_to_num(np.asarray(features, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        otb.set_threads(threads)
        app = otb.Registry.CreateApplication("ImageClassifier")
        app.ImportVectorImage("in", block.reshape(rows, width, -1))
        app.SetParameterString("model", str(self._model_path))
        if self._stats_path is not None:
            app.SetParameterString("imstat", str(self._stats_path))
        app.SetParameterString("out", "labels.tif")  # names only: nothing is written by Execute
        with_confidence = classifier not in NO_CONFIDENCE
        if with_confidence:
            app.SetParameterString("confmap", "confidence.tif")
        try:
            app.Execute()
            labels = app.GetImageAsNumpyArray("out").reshape(-1)[:n]
            confidence = app.GetImageAsNumpyArray("confmap").reshape(-1)[:n].astype(np.float64) \
                if with_confidence else np.ones(n)
        except otb.OtbError as exc:
            raise InputDataError(f"OTB ImageClassifier failed with the model {self._model_path}: {exc}") from exc
        labels = labels.astype(np.int32, copy=False)
        if classifier == "ann":  # OTB 8.1's ANN returns the float label's bits as an integer
            as_float = labels.view(np.float32)
            decoded = ~np.isin(labels, self.classes_) & np.isin(as_float, self.classes_.astype(np.float32))
            labels = np.where(decoded, as_float.astype(np.int64), labels)
            confidence = confidence / 2.0
        elif classifier == "knn":
            confidence = confidence / float((self.settings.get("options") or {}).get("classifier.knn.k", 32))
        return labels.astype(np.int64), np.clip(confidence, 0.0, 1.0)

    # ------------------------------------------------------------------ files
    def save(self, folder: Path, stem: str) -> dict[str, str]:
        """Write ``<stem>.txt`` (OTB's model) and, for libsvm, ``<stem>_stats.xml``."""
        folder = Path(folder)
        files = {}
        sources = [(self._model_path, folder / f"{stem}.txt")]
        stats_target = folder / f"{stem}_stats.xml"
        if self._stats_path is not None:
            sources.append((self._stats_path, stats_target))
        else:
            stats_target.unlink(missing_ok=True)
        for source, target in sources:
            data = Path(source).read_bytes()
            with atomic_output(target) as tmp:
                tmp.write_bytes(data)
                files[target.name] = file_digest(tmp)
        return files

    @classmethod
    def load(cls, folder: Path, stem: str, summary: dict) -> OtbLearner:
        """Point at the model's files, checked against the summary's digests (OTB reads them when classifying).

        Raises
        ------
        InputDataError
            A file is missing or was modified after training.
        """
        folder = Path(folder)
        model = folder / f"{stem}.txt"
        if model.name not in summary["files"]:
            raise refuse_model(model, f"is not listed in {folder / (stem + '.json')}")
        learner = cls(summary.get("settings") or {})
        for name in summary["files"]:
            check_file(folder / name, summary)
        learner._model_path = model
        stats = folder / f"{stem}_stats.xml"
        learner._stats_path = stats if stats.name in summary["files"] else None
        learner.feature_names = list(summary["feature_names"])
        learner.classes_ = np.asarray(summary["classes"], np.int64)
        return learner


def write_statistics(path: Path, features: np.ndarray) -> None:
    """Per-feature mean and standard deviation in OTB's statistics XML (what ComputeImagesStatistics writes); a
    constant feature gets a standard deviation of 1."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    lines = ['<?xml version="1.0" ?>', "<FeatureStatistics>"]
    for name, values in (("mean", mean), ("stddev", std)):
        lines.append(f'    <Statistic name="{name}">')
        lines += [f'        <StatisticVector value="{float(v)!r}" />' for v in values]
        lines.append("    </Statistic>")
    lines.append("</FeatureStatistics>")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
