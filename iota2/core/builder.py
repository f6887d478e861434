"""The builder contract: a builder turns a validated configuration into a task graph."""

from __future__ import annotations

from iota2.core.graph import Graph


class Builder:
    """Base class of builders.

    Subclasses set :attr:`groups` (ordered group names usable in ``first_step``/``last_step``),
    :attr:`mandatory_keys` and implement :meth:`build_graph`.

    Parameters
    ----------
    config
        The validated :class:`iota2.core.config.Config`.
    parallel_tasks
        Number of tasks the scheduler runs at once (``-nb_parallel_tasks``).
    """

    #: ordered names of the groups of steps
    groups: list[str] = []
    #: (section, key) pairs that must be set for this builder
    mandatory_keys: list[tuple[str, str]] = []
    #: names of the top-level files and folders this builder writes in ``chain.output_path``: the only ones
    #: ``chain.remove_output_path`` deletes (with the run files of every run)
    output_entries: tuple[str, ...] = ()
    #: whether the builder's tasks fit or apply a learner: local dask workers warm the default learner up at start
    #: (about 0.7 s of each worker's start, importing scikit-learn) only when a builder of the run does
    learns: bool = True

    def final_products(self) -> tuple[str, ...]:
        """Glob patterns of the entries this builder writes in ``final/`` (a folder builders share): what a run
        from the first group moves to ``final_previous/`` and ``chain.remove_output_path`` deletes there."""
        return ()

    def __init__(self, config, parallel_tasks: int = 1):
        self.config = config
        #: tasks the scheduler runs at once; builders may use it to balance chunks
        self.parallel_tasks = parallel_tasks

    def check_config(self) -> None:
        """Checks of the configuration alone (no file read), run before any cluster starts."""

    def check_inputs(self) -> None:
        """Cheap checks of the inputs (headers, vector attributes) before any task runs."""

    def build_graph(self) -> Graph:
        """Return the full task graph of this builder.

        The graph names the journal of its tasks in the output folder (``Graph(groups, status_file=...)``): a
        builder other than the classification builder gives its own, e.g. ``IOTA2_tasks_status_<builder>.txt``
        (and lists it in :attr:`output_entries`), so that builders run into one folder keep separate restart
        states."""
        raise NotImplementedError
