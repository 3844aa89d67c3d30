"""A drifting stack's mean frame, registered on its middle frame, and locate's spacing from it."""

import importlib
import math
import warnings

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from atomlens.locate import locate
from atomlens.locate.register import aligned_mean, frame_shift

from .test_motif import blurred_honeycomb

#: The specimen's position in each frame [px] (dy, dx): 1 px per frame along a lattice row
#: (the honeycomb is turned by 0.2 rad), a lattice constant over the stack, so that its plain
#: mean is stripes a row apart.
DRIFT = [(-0.2 * k, 0.98 * k) for k in range(12)]


def drifting_stack(dose: float = 400.0) -> np.ndarray:
    """12 Poisson frames of the wide-probe honeycomb (7 px bonds), moved by :data:`DRIFT`."""
    return np.stack([blurred_honeycomb(dose=dose, seed=20 + k, weak=0.6, shift=shift)[0]
                     for k, shift in enumerate(DRIFT)])  # fmt: skip


@pytest.mark.parametrize("shift", [(0, 0), (2, -3), (-5, 4), (9, 7)])
def test_the_shift_between_two_frames_is_found_in_whole_pixels(shift):
    # two crops of one noisy specimen (no lattice: every lag but one correlates poorly)
    rng = np.random.default_rng(3)
    specimen = ndimage.gaussian_filter(rng.normal(size=(160, 160)), 2.0)
    first = specimen[20:116, 20:116] + rng.normal(0, 0.05, (96, 96))
    moved = specimen[20 - shift[0] : 116 - shift[0], 20 - shift[1] : 116 - shift[1]]
    assert frame_shift(first, moved + rng.normal(0, 0.05, (96, 96))) == shift


@pytest.mark.parametrize("dose", [50.0, 400.0])
def test_frames_of_a_still_lattice_are_not_moved_by_a_lattice_vector(dose):
    # the correlation peaks at every lattice vector almost as high as at zero lag; at 50
    # counts per column noise made one of them the highest in 2 of 4 frames
    frames = [blurred_honeycomb(dose=dose, seed=k, weak=0.6)[0] for k in range(6)]
    assert [frame_shift(frames[0], frame) for frame in frames[1:]] == [(0, 0)] * 5


def test_a_stack_without_drift_averages_to_its_plain_mean_bit_for_bit():
    stack = np.stack([blurred_honeycomb(dose=50.0, seed=k, weak=0.6)[0] for k in range(5)])
    assert np.array_equal(aligned_mean(stack), stack.mean(axis=0))


def test_a_lazy_stack_gives_the_same_registered_mean_as_the_array():
    stack = drifting_stack()
    lazy = da.from_array(stack, chunks=(5, -1, -1))
    assert np.array_equal(aligned_mean(lazy), aligned_mean(stack))


def test_the_registered_mean_shows_the_middle_frames_columns_sharp():
    stack = drifting_stack()
    middle = len(stack) // 2
    # noiseless: the middle frame's expected image, and the plain mean's blur for contrast
    clean = blurred_honeycomb(dose=1e9, seed=0, weak=0.6, shift=DRIFT[middle])[0] / 1e9 * 400.0
    inner = (slice(20, -20), slice(20, -20))  # every frame sees it

    def error(image: np.ndarray) -> float:
        return float(np.sqrt(np.mean((image[inner] - clean[inner]) ** 2)))

    # 12 frames: the shot noise of the mean is a twelfth of a frame's variance, and the
    # half-pixel drift steps blur it by less than that noise
    assert error(aligned_mean(stack)) < 0.5 * error(stack[middle])
    assert error(aligned_mean(stack)) < 0.5 * error(stack.mean(axis=0))


def test_locate_takes_a_drifting_stacks_spacing_from_the_registered_mean():
    stack = drifting_stack()
    located = importlib.import_module("atomlens.locate.locate")
    # the premise: on the plain mean the spacing is the rows' (10.5 px), not the 7 px bond
    blurred, _, _ = located._spacing_px(stack, None, None, "haadf", 4.0,
                                        reference=stack.mean(axis=0))  # fmt: skip
    assert blurred > 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no pixel size: positions in pixels, said in a warning
        table = locate(stack)
    assert 6.3 < table.attrs["spacing_px"] < 7.2  # the overlapping tails pull it in a little
    # both sublattices in every frame: about twice the lattice sites of one
    counts = table.groupby("frame").size()
    bond, size = 7.0, 128
    honeycomb_columns = 2 * size**2 / (3 * math.sqrt(3) / 2 * bond**2)
    assert counts.min() > 0.8 * honeycomb_columns
