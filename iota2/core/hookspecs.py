"""Hook specifications: the contract between the iota2 core and its plugins.

Every hook is an empty function; its docstring is the contract. A plugin is a module (or object)
with functions of the same names decorated by :data:`hookimpl`, registered under the ``iota2``
entry-point group::

    [project.entry-points.iota2]
    my_plugin = "my_package.iota2_plugin"

Built-in sensors, builders, learners and classifiers are registered the same way.
"""

import pluggy

hookspec = pluggy.HookspecMarker("iota2")
hookimpl = pluggy.HookimplMarker("iota2")


@hookspec
def iota2_register_sensors():
    """Return a list of sensor classes.

    A sensor class has the attributes ``name`` (feature-label prefix, e.g. ``"Sentinel2"``),
    ``config_section`` (e.g. ``"Sentinel_2"``) and ``path_key`` (the ``chain`` key that enables it,
    e.g. ``"s2_path"``), and follows :class:`iota2.core.sensor.Sensor`: it lists the acquisition dates
    of a tile, gives the tile's reference grid, and reads a window of the tile as gap-filled features
    with their labels and validity masks.
    """


@hookspec
def iota2_register_builders():
    """Return a dict ``{name: builder_class}``.

    A builder turns a validated configuration into a task graph (:class:`iota2.core.graph.Graph`).
    Users select builders with ``builders.builders_class_name``; several names may map to one class
    (e.g. ``"i2_classification"`` and ``"I2Classification"``).
    """


@hookspec
def iota2_register_classifiers():
    """Return a dict ``{name: factory}`` of scikit-learn model types, used by the scikit-learn learner.

    ``factory(**params)`` returns an unfitted estimator with the scikit-learn API (``fit``,
    ``predict_proba``, ``classes_``). The name is what users write in
    ``scikit_models_parameters.model_type``.
    """


@hookspec
def iota2_register_learners():
    """Return a dict ``{name: learner_class}`` of learners (:class:`iota2.core.learner.Learner`).

    A learner class says whether a configuration selects it (``selected_by``), turns its configuration section
    into small JSON-able settings (``settings_from_config``, ConfigError on a bad one), and, built from those
    settings, declares its :class:`iota2.core.learner.Resources` (threads, memory, GPU), fits from the samples
    file of a (region, run) (``fit``), writes and reads its files in the model folder (``save`` / ``load``, digests
    checked, nothing executed on load) and gives class probabilities of a block of feature rows
    (``predict_proba``). Its ``name`` attribute is the key it is registered under; it is written in each model's
    summary, and the classification loads the model with the class registered under it. The scikit-learn learner
    (``sklearn``) is the default when no learner's ``selected_by`` is true. Test one with
    :func:`iota2.core.learner_checks.check_learner`.
    """


@hookspec
def iota2_register_feature_functions():
    """Return a dict ``{name: function}`` of feature functions usable in ``external_features.functions``.

    A function is called as ``function(container, **kwargs)`` (keywords from the configuration) with the data
    container of a chunk (:class:`iota2.core.feature_functions.FeatureContainer`:
    ``get_interpolated_<Sensor>_<band>()`` ...) and returns ``(array, labels)`` with ``array`` shaped
    (rows, cols, n) and ``labels`` a list of n names. A function of the user's module
    (``external_features.module``) with the same name wins. See ``docs/external_features.md``.
    """


@hookspec
def iota2_register_dl_models():
    """Return a dict ``{name: torch.nn.Module subclass}`` selectable by ``deep_learning_parameters.dl_name``."""


@hookspec
def iota2_config_sections():
    """Return a list of :class:`iota2.core.config.Section` objects that extend the configuration.

    Each section declares its keys with types, defaults and documentation; the core validates them
    like its own and writes them in the generated configuration reference.
    """


@hookspec
def iota2_register_commands():
    """Return a dict ``{name: function}`` of extra command-line commands.

    ``iota2 <name> args...`` calls ``function(args)`` with the remaining arguments as a list of strings;
    it returns the exit code. Used e.g. by the Sentinel-1 sensor for ``iota2 s1-preprocess``.
    """
