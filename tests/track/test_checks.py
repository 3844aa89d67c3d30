"""What track refuses: clear errors naming the problem, before any work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomlens.core.validation import InputError, ParameterError
from atomlens.track import track

RNG = np.random.default_rng(0)


def table(frames=(0, 1), n=4) -> pd.DataFrame:
    rows = [(f, 10.0 * k, 5.0) for f in frames for k in range(n)]
    return pd.DataFrame(rows, columns=["frame", "y", "x"])


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (table().drop(columns="x"), "missing: x"),
        (table().rename(columns={"frame": "t"}), "missing: frame"),
        (table().iloc[:0], "empty table"),
        (table().assign(y=[np.nan] + [1.0] * 7), "y is not a finite number"),
        (table().assign(x=np.inf), "x is not a finite number"),
        (table().assign(frame=[0.5] * 4 + [1] * 4), "whole frame numbers"),
        (table(frames=(3,)), "one frame only"),
        (np.ones((32, 32)), "one 2-D image"),
        ([RNG.random((32, 32)), RNG.random((40, 32))], "different sizes"),
        (RNG.random((1, 32, 32)), "one frame only"),
        (np.dstack([RNG.random((32, 32)), np.full((32, 32), 2.0)]).transpose(2, 0, 1),
         "constant"),
        ("frames.tif", "table of detections or a 3-D stack"),
    ],
)  # fmt: skip
def test_bad_inputs_are_refused(frames, message):
    with pytest.raises(InputError, match=message):
        track(frames)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pixel_size": -0.1}, "pixel_size=... .image pixel size. must lie in"),
        ({"pixel_size": float("nan")}, "pixel_size=.*finite"),
        ({"frame_time": -1.0}, r"frame_time=... \(time between frames\) must lie in \(0, "),
        ({"frame_time": 0.0}, "frame_time"),
        ({"search_range": 0.0}, "search_range=... must be a positive"),
        ({"fast_range": "far"}, "fast_range=... must be a distance"),
        ({"max_drift": -3}, "max_drift"),
        ({"memory": -1}, r"memory=... must lie in \[0, 1000\]"),
        ({"memory": 1.5}, "memory=... must be a whole number"),
        ({"locate_options": {"threshold": 3}}, "applies to a stack"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        track(table(), **options)


def test_parameter_errors_are_parameter_errors():
    with pytest.raises(ParameterError):
        track(table(), frame_time=-1.0)


def test_a_table_with_one_detection_per_frame_needs_a_search_range():
    lone = pd.DataFrame({"frame": [0, 1, 2], "y": [1.0, 1.5, 2.0], "x": [3.0, 3.0, 3.0]})
    with pytest.raises(InputError, match=r"search_range=\.\.\."):
        track(lone)
    assert track(lone, search_range=1.0)["particle"].tolist() == [0, 0, 0]
