"""The task that writes a run's HTML report, ``final/report.html`` (:mod:`iota2.core.report_html`).

A builder adds it to its ``validation`` group after the tasks whose files the report shows: the report of the
metrics (``RESULTS.txt``, the area-adjusted accuracy), the mosaics (quicklooks), the pixel validity and the class
statistics.
"""

from __future__ import annotations

from pathlib import Path

from iota2.core.report_html import write_report


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
    return str(Path(write_report(output_path, runs, nomenclature_path, color_table)))
