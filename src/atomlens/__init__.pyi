# Type stub for the lazy top-level package (see __init__.py): the subpackages it loads on first use.
from atomlens import analyze as analyze
from atomlens import calibrate as calibrate
from atomlens import core as core
from atomlens import data as data
from atomlens import enhance as enhance
from atomlens import io as io
from atomlens import locate as locate
from atomlens import metrics as metrics
from atomlens import nn as nn
from atomlens import physics as physics
from atomlens import pipeline as pipeline
from atomlens import report as report
from atomlens import restore as restore
from atomlens import track as track
from atomlens import train as train
from atomlens import zoo as zoo

__version__: str

__all__ = [
    "analyze",
    "calibrate",
    "core",
    "data",
    "enhance",
    "io",
    "locate",
    "metrics",
    "nn",
    "physics",
    "pipeline",
    "report",
    "restore",
    "track",
    "train",
    "zoo",
]
