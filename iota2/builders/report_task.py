"""The task that writes a run's HTML report, ``final/report.html`` (:mod:`iota2.core.report_html`).

A builder adds it to its ``validation`` group after the tasks whose files the report shows: the report of the
metrics (``RESULTS.txt``, the area-adjusted accuracy), the mosaics (quicklooks), the pixel validity and the class
statistics.
"""

from __future__ import annotations

from pathlib import Path

from iota2.builders.stac_items import add_stac_tasks


def write_html_report(output_path: str, runs: int, nomenclature_path: str | None = None,
                      color_table: str | None = None) -> str:
    """Write ``final/report.html``: one self-contained HTML file with the run's maps, metrics over runs, confusion
    matrices, area-adjusted accuracy, sampling statistics, learning curves, time per step and configuration.

    Parameters
    ----------
    output_path
        ``chain.output_path``.
    runs
        ``arg_train.runs``.
    nomenclature_path
        ``chain.nomenclature_path`` (class names); None: labels as numbers.
    color_table
        ``chain.color_table`` (colours of the legend); None: default colours.

    Returns
    -------
    str
        The report's path.
    """
    from iota2.core.report_html import write_report

    return str(Path(write_report(output_path, runs, nomenclature_path, color_table)))


def add_report_and_stac_tasks(graph, *, output_path: str, runs: int, regions: list[str], all_labels: list[int],
                              dates_by_sensor: dict, nomenclature_path: str | None, color_table: str | None,
                              report, validity_map, mosaics: list, class_statistics: list, learning: list) -> None:
    """Add the ``html_report`` task (its step declared by the builder, in group ``validation``) and the ``stac``
    step and task (:func:`iota2.builders.stac_items.add_stac_tasks`) of a run that classifies and validates maps.

    Parameters
    ----------
    graph
        The builder's :class:`iota2.core.graph.Graph`.
    output_path, runs, regions, all_labels, dates_by_sensor, nomenclature_path, color_table
        ``chain.output_path``, ``arg_train.runs``, the regions, every label of the ground truth, the interpolation
        dates of each sensor, ``chain.nomenclature_path`` and ``chain.color_table``.
    report, validity_map, mosaics, class_statistics, learning
        The tasks writing ``RESULTS.txt`` (and the area-adjusted accuracy), ``PixelsValidity.tif``, the final maps
        of each run, the class statistics of each run and the models.
    """
    graph.add_task("html_report", "html_report", f"{__name__}:write_html_report",
                   {"output_path": output_path, "runs": runs, "nomenclature_path": nomenclature_path,
                    "color_table": color_table}, [report, validity_map] + mosaics + class_statistics)
    add_stac_tasks(graph, "validation",
                   {"output_path": output_path, "runs": runs, "regions": regions, "all_labels": all_labels,
                    "dates_by_sensor": dates_by_sensor, "nomenclature_path": nomenclature_path,
                    "color_table": color_table}, [report, validity_map] + mosaics + learning)
