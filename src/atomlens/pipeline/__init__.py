"""The end-to-end run: one input read, restored, located, analyzed and tracked, and its report.

- ``run``: the chain on a file or an array, returning a :class:`RunResult` (every table, the
  analysis, the tracks, timings and notes on what was skipped and why).
- ``write_run``: the run's folder: CSV tables, PNG figures, an animated GIF of a series,
  ``summary.json`` and one self-contained ``report.html``; all files written or none.

This package sits above the task packages (restore, locate, analyze, track) and only chains their
public verbs; the command is ``atomlens run``.
"""

from atomlens.pipeline.outputs import output_names, report_html, write_run
from atomlens.pipeline.run import RunResult, run

__all__ = ["RunResult", "output_names", "report_html", "run", "write_run"]
