"""Sub-pixel refinement of every column at once: batched 2D Gaussian fits with uncertainties.

Each column is modelled in a square window around its starting position as
``B + A exp(-((y - y0)**2 + (x - x0)**2) / (2 s**2))`` and fitted by least squares with a damped
Gauss-Newton (Levenberg-Marquardt) iteration that numpy runs on all windows together (an
(n, 5, 5) normal-equation solve per step), not one scipy fit per column: 2000 columns take
well under a second.

Overlapping neighbours are fitted together by block iteration: after each round every window's
data has the current Gaussians of all the other columns that reach into it subtracted, and the
fits are repeated, so a column's tail no longer pulls its neighbour. From the second round the
fit is weighted by 1 / variance, with ``variance = c + g * level`` fitted to the previous
round's squared residuals (shot noise: the variance grows with the counts), which approaches the
Poisson maximum-likelihood fit. The position uncertainty is the weighted least-squares
covariance ``s2 (J^T W J)^-1`` with ``s2`` the window's weighted residual variance.

Columns that overlap strongly (closer than :data:`~atomlens.locate.coupled.COUPLED` times the
sum of their widths, a Si [110] dumbbell) are then fitted again jointly with those neighbours
in windows of three widths (:mod:`atomlens.locate.coupled`), which the block iteration
approaches only slowly.

Coordinates are (row, column) = (y, x) in pixels, pixel centres at integer coordinates.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import spatial

from atomlens.locate.coupled import MOST_COUPLED, coupled_neighbours, in_pairs, others_signal
from atomlens.locate.threads import fit_threads, thread_count

# fit_threads: re-exported, where it lived before atomlens.locate.threads
__all__ = ["ColumnFit", "fit_threads", "neighbour_reach", "refine_columns"]

#: Parameter order of a window fit: amplitude, dy, dx (from the window centre), width, background.
PARAMETERS = ("amplitude", "dy", "dx", "width", "background")


def _windows(image: np.ndarray, peaks: np.ndarray, half: int) -> np.ndarray:
    """(n, k, k) windows of side ``2 half + 1`` centred on integer peaks (NaN off the image)."""
    padded = np.pad(image.astype(np.float64), half, mode="constant", constant_values=np.nan)
    offsets = np.arange(-half, half + 1)
    rows = peaks[:, 0, None, None] + half + offsets[None, :, None]
    cols = peaks[:, 1, None, None] + half + offsets[None, None, :]
    return padded[rows, cols]


#: A window whose Levenberg-Marquardt step moved its centre by less than this [px] and lowered
#: its cost by less than :data:`COST_TOLERANCE` (relative) has converged and is left alone: most
#: windows converge in a few steps, and the steps of the slow ones then cost only them.
STEP_TOLERANCE = 1e-4
COST_TOLERANCE = 1e-9
#: The same for every round but the last: the next round changes each window's data (the
#: neighbours' Gaussians subtracted anew), so converging further there was wasted; at 200
#: e-/column it took half the fitting time.
EARLY_TOLERANCES = (1e-2, 1e-5)


def _levenberg_marquardt(
    model: _WindowModel,
    params: np.ndarray,
    iterations: int,
    widest: np.ndarray | float,
    tolerances: tuple[float, float] = (STEP_TOLERANCE, COST_TOLERANCE),
    narrowest: np.ndarray | float = 0.3,
) -> np.ndarray:
    """Damped Gauss-Newton steps on (n, p) parameters; a step is kept where it lowers the cost.

    ``model.normal_equations(params)`` returns the cost (n,), J J^T (n, p, p) and J r (n, p),
    and ``model.rows(index)`` the same model for some windows only. The width (parameter 3)
    is kept in [``narrowest``, ``widest``] px (each one value or one per window). A window
    stops once converged (``tolerances``: step [px] and relative cost gain,
    :data:`STEP_TOLERANCE`).
    """
    params = params.copy()
    narrowest = np.broadcast_to(np.asarray(narrowest, dtype=np.float64), len(params))
    widest = np.broadcast_to(np.asarray(widest, dtype=np.float64), len(params))
    damping = np.full(len(params), 1e-3)
    # only the small normal equations are kept between steps: copying the (n, 5, k)
    # Jacobians of the active windows at every step cost more than computing them
    cost, normal, gradient = model.normal_equations(params)
    eye = np.eye(params.shape[1])
    active = np.arange(len(params))
    for _ in range(iterations):
        if not len(active):
            break
        part = model.rows(active) if len(active) < len(params) else model
        scale = np.einsum("nii->ni", normal[active])[:, :, None] * eye
        try:
            # the damping and a 1e-12 ridge are relative to the diagonal: the same steps at any
            # image scale (an absolute ridge would regularise a scaled-down system more)
            system = normal[active] + (damping[active, None, None] + 1e-12) * scale + 1e-300 * eye
            step = np.linalg.solve(system, gradient[active][..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        trial = params[active] + step
        trial[:, 3] = np.clip(trial[:, 3], narrowest[active], widest[active])
        trial_cost, trial_normal, trial_gradient = part.normal_equations(trial)
        better = np.isfinite(trial_cost) & (trial_cost <= cost[active])
        kept = active[better]
        gain = cost[kept] - trial_cost[better]
        params[kept], normal[kept], gradient[kept] = (
            trial[better],
            trial_normal[better],
            trial_gradient[better],
        )
        cost[kept] = trial_cost[better]
        damping[active] = np.where(better, damping[active] * 0.3, damping[active] * 10.0)
        settled = np.zeros(len(active), dtype=bool)
        settled[better] = (np.abs(step[better, 1:3]).max(axis=1) < tolerances[0]) & (
            gain <= tolerances[1] * cost[kept]
        )
        active = active[~settled]
    return params


#: Fewer windows than this are fitted in one thread (threads would cost more than they save).
THREADED_WINDOWS = 256


def _fit_windows(
    model: _WindowModel,
    params: np.ndarray,
    iterations: int,
    widest: np.ndarray,
    threads: int | None,
    tolerances: tuple[float, float],
    narrowest: np.ndarray,
) -> np.ndarray:
    """:func:`_levenberg_marquardt` on the windows split over ``threads`` threads.

    Every window's fit is independent, so the split changes nothing but the time: on 2 cores
    2000 columns fit in about 0.6 of the time of one thread.
    """
    threads = thread_count(threads)
    if threads < 2 or len(params) < THREADED_WINDOWS:
        return _levenberg_marquardt(model, params, iterations, widest, tolerances, narrowest)
    chunks = np.array_split(np.arange(len(params)), threads)
    errors = np.geterr()  # numpy's error state is per thread: the workers take the caller's

    def fit(index: np.ndarray) -> np.ndarray:
        with np.errstate(**errors):
            return _levenberg_marquardt(model.rows(index), params[index], iterations,
                                        widest[index], tolerances, narrowest[index])  # fmt: skip

    with ThreadPoolExecutor(threads) as pool:
        return np.concatenate(list(pool.map(fit, chunks)))


def _start(
    image: np.ndarray, peaks: np.ndarray, half: int, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window data (n, k*k) with 0 off the image, its mask, and the starting parameters."""
    data = _windows(image, peaks, half).reshape(len(peaks), -1)
    mask = np.isfinite(data).astype(np.float64)  # pixels off the image weigh 0
    data = np.where(mask > 0, data, 0.0)
    low = np.where(mask > 0, data, np.inf).min(axis=1)
    high = np.where(mask > 0, data, -np.inf).max(axis=1)
    n = len(peaks)
    params = np.stack([high - low, np.zeros(n), np.zeros(n), np.full(n, float(width)), low], 1)
    return data, mask, params


class _WindowModel:
    """Residuals and Jacobians of Gaussian-plus-background models on (n, k*k) windows.

    float64 throughout: in float32 (twice as fast) the rounding made fits of the same image at
    another scale end up to 0.006 px apart and keep a different set of columns.
    """

    def __init__(self, data: np.ndarray, mask: np.ndarray, half: int):
        self.data, self.mask = data, mask
        self.weights = mask  # square roots of the pixel weights; 0 off the image
        self.offsets = np.arange(-half, half + 1, dtype=np.float64)  # window rows and cols

    def rows(self, index: np.ndarray) -> _WindowModel:
        """The same model for the windows ``index`` only."""
        part = object.__new__(type(self))
        part.data, part.mask, part.weights = self.data[index], self.mask[index], self.weights[index]
        part.offsets = self.offsets
        return part

    def values(self, p: np.ndarray) -> np.ndarray:
        """(n, k*k) model values of parameters ``p``."""
        n, k = len(p), len(self.offsets)
        a, y0, x0, s, b = (p[:, i, None] for i in range(5))
        ey = np.exp(-((self.offsets - y0) ** 2) / (2.0 * s**2))
        ex = np.exp(-((self.offsets - x0) ** 2) / (2.0 * s**2))
        return b + (a[:, :, None] * ey[:, :, None] * ex[:, None, :]).reshape(n, k * k)

    def __call__(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, k = len(p), len(self.offsets)
        a, y0, x0, s, b = (p[:, i, None] for i in range(5))
        # the Gaussian is separable: 2 k exponentials per window instead of k^2, and every
        # factor of the Jacobian below is a row or a column broadcast over the window (this
        # call was most of the fitting time; now about half as long, the same to rounding)
        dy, dx = self.offsets - y0, self.offsets - x0  # (n, k)
        ey, ex = np.exp(-(dy**2) / (2.0 * s**2)), np.exp(-(dx**2) / (2.0 * s**2))
        w = self.weights.reshape(n, k, k)
        # the Jacobian is written in place: stacking five (n, k*k) arrays cost a third of a fit
        jac = np.empty((n, p.shape[1], k, k))
        np.multiply(ey[:, :, None] * ex[:, None, :], w, out=jac[:, 0])  # g w
        weighted = a[:, :, None] * jac[:, 0]  # a g w
        np.multiply(weighted, (dy / s**2)[:, :, None], out=jac[:, 1])
        np.multiply(weighted, (dx / s**2)[:, None, :], out=jac[:, 2])
        np.multiply(weighted, (dy**2 / s**3)[:, :, None] + (dx**2 / s**3)[:, None, :],
                    out=jac[:, 3])  # fmt: skip
        jac[:, 4] = w
        model = self._with_neighbours(p, w, jac, weighted)
        residual = (self.data - b) * self.weights - model.reshape(n, k * k)
        return residual, jac.reshape(n, p.shape[1], k * k)

    def _with_neighbours(
        self, p: np.ndarray, w: np.ndarray, jac: np.ndarray, weighted: np.ndarray
    ) -> np.ndarray:
        """The window's weighted model (n, k, k): here its one column's, ``weighted``."""
        return weighted

    def normal_equations(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cost (n,), normal matrix J J^T (n, 5, 5) and gradient J r (n, 5) of
        the window fit, without the Jacobian.

        Every Jacobian plane is the weight w times a sum of separable terms
        (ey dy^p)_i (ex dx^q)_j, so each entry of J J^T is a sum of bilinear forms
        u^T (w^2) v of a few row and column profiles, and each of J r one of u^T (w r) v:
        one small matrix product per window with 9 (w^2) and 4 (w r) column profiles, instead
        of five k x k planes and their 25 products (building the Jacobian and J J^T was most
        of the fitting time; this takes about half as long). The same to rounding.
        """
        n, k = len(p), len(self.offsets)
        a, y0, x0, s, b = (p[:, i, None] for i in range(5))
        dy, dx = self.offsets - y0, self.offsets - x0  # (n, k)
        ey, ex = np.exp(-(dy**2) / (2.0 * s**2)), np.exp(-(dx**2) / (2.0 * s**2))
        w = self.weights.reshape(n, k, k)
        # r = ((data - b) - a g) w, in place (each temporary k x k plane costs)
        residual = ey[:, :, None] * ex[:, None, :]
        residual *= -a[:, :, None]
        residual += self.data.reshape(n, k, k)
        residual -= b[:, :, None]
        residual *= w
        # column profiles ex^2 dx^q (q = 0..4), ex dx^q (q = 0..2) and 1; rows alike in y
        columns = np.empty((n, 9, k))
        columns[:, 0], columns[:, 5], columns[:, 8] = ex * ex, ex, 1.0
        rows2, rows1 = np.empty((n, 5, k)), np.empty((n, 3, k))
        rows2[:, 0], rows1[:, 0] = ey * ey, ey
        for q in range(1, 5):
            columns[:, q] = columns[:, q - 1] * dx
            rows2[:, q] = rows2[:, q - 1] * dy
            if q < 3:
                columns[:, 5 + q] = columns[:, 4 + q] * dx
                rows1[:, q] = rows1[:, q - 1] * dy
        squares = (w * w) @ columns.transpose(0, 2, 1)  # (n, k, 9)
        both = rows2 @ squares[:, :, :5]  # (n, 5, 5): [p, q] of ey^2 ex^2 dy^p dx^q w^2
        single = rows1 @ squares[:, :, 5:8]  # (n, 3, 3): of ey ex dy^p dx^q w^2
        total = squares[:, :, 8].sum(axis=1)  # sum of w^2
        projected = (residual * w) @ columns[:, 5:].transpose(0, 2, 1)  # (n, k, 4)
        onto = rows1 @ projected[:, :, :3]  # (n, 3, 3): of ey ex dy^p dx^q w r
        c1, c3 = a[:, 0] / s[:, 0] ** 2, a[:, 0] / s[:, 0] ** 3
        normal = np.empty((n, 5, 5))
        entries = {
            (0, 0): both[:, 0, 0],
            (0, 1): c1 * both[:, 1, 0],
            (0, 2): c1 * both[:, 0, 1],
            (0, 3): c3 * (both[:, 2, 0] + both[:, 0, 2]),
            (0, 4): single[:, 0, 0],
            (1, 1): c1**2 * both[:, 2, 0],
            (1, 2): c1**2 * both[:, 1, 1],
            (1, 3): c1 * c3 * (both[:, 3, 0] + both[:, 1, 2]),
            (1, 4): c1 * single[:, 1, 0],
            (2, 2): c1**2 * both[:, 0, 2],
            (2, 3): c1 * c3 * (both[:, 2, 1] + both[:, 0, 3]),
            (2, 4): c1 * single[:, 0, 1],
            (3, 3): c3**2 * (both[:, 4, 0] + 2.0 * both[:, 2, 2] + both[:, 0, 4]),
            (3, 4): c3 * (single[:, 2, 0] + single[:, 0, 2]),
            (4, 4): total,
        }
        for (i, j), value in entries.items():
            normal[:, i, j] = normal[:, j, i] = value
        gradient = np.stack([onto[:, 0, 0], c1 * onto[:, 1, 0], c1 * onto[:, 0, 1],
                             c3 * (onto[:, 2, 0] + onto[:, 0, 2]),
                             projected[:, :, 3].sum(axis=1)], axis=1)  # fmt: skip
        return np.sum(residual.reshape(n, k * k) ** 2, axis=1), normal, gradient


class _GroupModel(_WindowModel):
    """The window model of a column with ``m`` coupled neighbours
    (:mod:`atomlens.locate.coupled`): after the column's five parameters, the amplitude, y and
    x of each neighbour relative to the window centre [px]; the neighbours' widths (n, m) [px]
    are held.
    """

    def __init__(self, data: np.ndarray, mask: np.ndarray, half: int, widths: np.ndarray):
        super().__init__(data, mask, half)
        self.widths = widths

    def normal_equations(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_WindowModel.normal_equations` from the Jacobian (the neighbours' planes
        make the sum over pixels not separable like the one column's)."""
        residual, jacobian = self(p)
        normal = jacobian @ jacobian.transpose(0, 2, 1)  # batched BLAS, faster than einsum
        gradient = (jacobian @ residual[..., None])[..., 0]
        return np.sum(residual**2, axis=1), normal, gradient

    def rows(self, index: np.ndarray) -> _GroupModel:
        part = super().rows(index)
        part.widths = self.widths[index]
        return part

    def _profiles(self, p: np.ndarray, j: int) -> tuple[np.ndarray, ...]:
        """Row and column profiles (n, k) of neighbour ``j``, their offsets and its width."""
        y0, x0 = p[:, 6 + 3 * j, None], p[:, 7 + 3 * j, None]
        sigma = self.widths[:, j, None]
        dy, dx = self.offsets - y0, self.offsets - x0
        gy = np.exp(-(dy**2) / (2.0 * sigma**2))
        gx = np.exp(-(dx**2) / (2.0 * sigma**2))
        return gy, gx, dy, dx, sigma

    def values(self, p: np.ndarray) -> np.ndarray:
        total = super().values(p[:, :5])
        n, k = len(p), len(self.offsets)
        for j in range(self.widths.shape[1]):
            gy, gx, *_ = self._profiles(p, j)
            total += (p[:, 5 + 3 * j, None, None] * gy[:, :, None] * gx[:, None, :]).reshape(
                n, k * k
            )
        return total

    def _with_neighbours(
        self, p: np.ndarray, w: np.ndarray, jac: np.ndarray, weighted: np.ndarray
    ) -> np.ndarray:
        """The window's weighted model with the neighbours' added, their Jacobian rows filled
        in ``jac``."""
        model = weighted.copy()
        for j in range(self.widths.shape[1]):
            gy, gx, ny, nx, sigma = self._profiles(p, j)
            first = 5 + 3 * j
            np.multiply(gy[:, :, None] * gx[:, None, :], w, out=jac[:, first])
            neighbour = p[:, first, None, None] * jac[:, first]
            np.multiply(neighbour, (ny / sigma**2)[:, :, None], out=jac[:, first + 1])
            np.multiply(neighbour, (nx / sigma**2)[:, None, :], out=jac[:, first + 2])
            model += neighbour
        return model


def _variance_line(levels: np.ndarray, squares: np.ndarray) -> tuple[float, float]:
    """``variance = intercept + slope * level`` fitted to squared residuals in 20 level bins.

    Poisson counts make the slope the gain; a slope not clearly above 0 (Gaussian noise, or
    too few pixels) gives a constant variance.
    """
    # 20 quantile bins need no sort of every pixel (2000 windows hold half a million): a
    # regular subsample of about 50,000 fixes them as well
    stride = max(1, len(levels) // 50_000)
    levels, squares = levels[::stride], squares[::stride]
    order = np.argsort(levels)
    bins = np.array_split(order, 20)
    x = np.array([levels[b].mean() for b in bins if len(b)])
    y = np.array([squares[b].mean() for b in bins if len(b)])
    if len(x) < 3 or np.ptp(x) == 0:
        return float(np.mean(squares)), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    spread = np.std(y - (intercept + slope * x)) / (np.std(x) * np.sqrt(len(x)))
    if slope <= 3 * spread:
        return float(np.mean(squares)), 0.0
    return float(intercept), float(slope)


def _noise_line(model: _WindowModel, params: np.ndarray) -> tuple[float, float, float]:
    """Intercept and slope of the variance line of the fit's residuals, and their mean
    square (:func:`_variance_line`)."""
    values = model.values(params)
    inside = model.mask > 0
    squares = ((model.data - values) ** 2)[inside]
    intercept, slope = _variance_line(values[inside], squares)
    return intercept, slope, float(np.mean(squares)) if squares.size else 0.0


def _set_weights(
    model: _WindowModel,
    params: np.ndarray,
    line: tuple[float, float, float] | None = None,
) -> None:
    """Weights 1 / variance from the variance ``line`` (default: that of the current fit's
    residuals, :func:`_noise_line`)."""
    intercept, slope, typical = _noise_line(model, params) if line is None else line
    variance = intercept + slope * model.values(params)
    if not (typical > 0 and np.isfinite(variance).all()):  # a perfect fit: nothing to weigh
        model.weights = model.mask
        return
    # no pixel may weigh more than 10 x a typical one (a line can dip to 0 or below)
    weights = model.mask / np.sqrt(np.maximum(variance, 0.1 * typical))
    model.weights = weights * np.sqrt(typical)  # near 1: the same damping scale as round one


class ColumnFit:
    """The fitted columns (arrays of length n, pixels unless noted).

    Attributes
    ----------
    y, x : ndarray
        Positions [px].
    amplitude, width, background : ndarray
        Peak height above the background (image units), Gaussian standard deviation [px], and
        the local background (image units).
    intensity : ndarray
        The Gaussian's integral ``2 pi A s**2`` [image units x px^2]: for counts, the counts
        the column scattered onto the detector (its scattering cross-section times the dose).
    sigma_y, sigma_x : ndarray
        Standard errors of y and x from the least-squares covariance [px].
    sigma_amplitude : ndarray
        Standard error of the amplitude (image units): ``amplitude / sigma_amplitude`` is the
        column's significance.
    converged : ndarray of bool
        The fit stayed inside its window with a positive amplitude and finite uncertainties.
    """

    NAMES = ("y", "x", "amplitude", "width", "background", "intensity", "sigma_y", "sigma_x",
             "sigma_amplitude", "converged")  # fmt: skip

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns
        for name, value in columns.items():
            setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.columns["y"])


def neighbour_reach(half: int, width: float) -> float:
    """How far [px] a column's centre may lie from a window's centre and still be fitted as
    its neighbour: the window's half-diagonal plus four starting ``width`` s."""
    return math.sqrt(2.0) * half + 4.0 * width


#: The most values [floats] the wide neighbours of :func:`_neighbour_signal` are evaluated
#: at in one piece (about 16 MB each array).
PAIR_VALUES = 2_000_000


def _neighbour_signal(peaks: np.ndarray, params: np.ndarray, half: int, width: float) -> np.ndarray:
    """(n, k*k): the Gaussians (no background) of the other columns at each window's pixels.

    A neighbour counts in a window when its centre lies within the window's half-diagonal plus
    four starting ``width`` s [px]. Columns no wider than 1.5 starting widths (almost all) are
    drawn once onto one canvas within 6 of their own widths s of their integer peak, and each
    window reads the canvas less its own Gaussian: n (12 s + 1)^2 evaluations instead of one
    per window, neighbour and pixel (about 10 x fewer at 2000 columns). Wider fits (background
    blobs in ABF or HRTEM images) are added to the windows within reach, whole: drawn on the
    canvas they would reach windows far away and hurt those fits. Columns with a zero
    amplitude draw nothing.
    """
    offsets = np.arange(-half, half + 1)
    wy, wx = (g.ravel() for g in np.meshgrid(offsets, offsets, indexing="ij"))
    narrow = (params[:, 3] <= 1.5 * width) & (params[:, 0] != 0)
    # each narrow column is drawn to 6 of its own widths; columns of one reach together
    reaches = np.ceil(6.0 * params[:, 3]).astype(int)
    margin = max(half, int(reaches[narrow].max(initial=0)))
    origin = peaks.min(axis=0) - margin
    extent = peaks.max(axis=0) - origin + margin + 1
    # one bincount over every group's pixels (one per group, each a whole canvas to allocate
    # and add, cost about as much as the drawing), the columns in raster order (the bincount
    # then adds to nearby memory: twice as fast as in the peak finder's order)
    cells, weights = [], []
    own = np.zeros((len(peaks), wy.size))
    raster = np.lexsort((peaks[:, 1], peaks[:, 0]))
    for reach in np.unique(reaches[narrow]):
        group = raster[(narrow & (reaches == reach))[raster]]
        amplitude, y0, x0, sigma = (params[group, i, None] for i in range(4))
        drawn = np.arange(-reach, reach + 1)
        # separable: a row and a column profile per column, one outer product
        gy = np.exp(-((drawn - y0) ** 2) / (2.0 * sigma**2))
        gx = np.exp(-((drawn - x0) ** 2) / (2.0 * sigma**2))
        values = (amplitude[:, :, None] * gy[:, :, None]) * gx[:, None, :]
        rows = peaks[group, 0, None, None] - origin[0] + drawn[None, :, None]
        cols = peaks[group, 1, None, None] - origin[1] + drawn[None, None, :]
        cells.append((rows * extent[1] + cols).ravel())
        weights.append(values.ravel())
        # the window's own Gaussian where it was drawn: the same profiles, cut to the window
        within = np.abs(offsets) <= reach
        own_y = np.zeros((len(group), len(offsets)))
        own_x = np.zeros((len(group), len(offsets)))
        own_y[:, within], own_x[:, within] = (
            gy[:, offsets[within] + reach],
            gx[:, offsets[within] + reach],
        )
        own[group] = ((amplitude[:, :, None] * own_y[:, :, None]) * own_x[:, None, :]).reshape(
            len(group), -1
        )
    size = int(extent[0] * extent[1])
    canvas = (np.bincount(np.concatenate(cells), np.concatenate(weights), minlength=size)
              if cells else np.zeros(size))  # fmt: skip
    total = canvas[(peaks[:, 0, None] - origin[0] + wy) * extent[1]
                   + peaks[:, 1, None] - origin[1] + wx]  # fmt: skip
    total -= own
    wide = np.flatnonzero(~narrow & (params[:, 0] != 0))
    if len(wide):
        within = neighbour_reach(half, width)
        lists = spatial.cKDTree(peaks[wide].astype(float)).query_ball_point(
            peaks.astype(float), within
        )
        windows = np.repeat(np.arange(len(peaks)), [len(items) for items in lists])
        others = wide[np.concatenate([np.asarray(items, dtype=int) for items in lists])]
        windows, others = windows[windows != others], others[windows != others]
        # separable, a row and a column profile per pair, and in chunks: a pair per window
        # and wide neighbour, each a whole window, was most of a wide-window fit's time and
        # memory (precise=True on the real MoS2 image: 14 of 23 s), the same to rounding
        k = len(offsets)
        chunk = max(1, PAIR_VALUES // (k * k))
        for first in range(0, len(windows), chunk):
            into, of = windows[first : first + chunk], others[first : first + chunk]
            cy = (peaks[of, 0] + params[of, 1] - peaks[into, 0])[:, None]
            cx = (peaks[of, 1] + params[of, 2] - peaks[into, 1])[:, None]
            spread = 2.0 * params[of, 3, None] ** 2
            gy = params[of, 0, None] * np.exp(-((offsets - cy) ** 2) / spread)
            gx = np.exp(-((offsets - cx) ** 2) / spread)
            values = (gy[:, :, None] * gx[:, None, :]).reshape(len(into), k * k)
            # rows of one window summed by bincount (np.add.at is several times slower)
            cells = (into[:, None] * (k * k) + np.arange(k * k)).ravel()
            total += np.bincount(cells, weights=values.ravel(), minlength=total.size).reshape(
                total.shape
            )
    return total


def refine_columns(
    image: np.ndarray,
    peaks: np.ndarray,
    *,
    half: int,
    width: float,
    rounds: int = 3,
    iterations: int = 20,
    threads: int | None = None,
    narrowest: np.ndarray | float = 0.3,
    widest: np.ndarray | float | None = None,
    joint: bool = True,
    initial: np.ndarray | None = None,
) -> ColumnFit:
    """Fit a Gaussian to every column, neighbours together, with position uncertainties.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Columns bright, any units.
    peaks : ndarray (n, 2)
        Integer (y, x) starting positions [px]; each window is centred on one.
    half : int
        Window half-side [px] (a window is ``2 half + 1`` px wide).
    width : float
        Starting Gaussian standard deviation [px].
    rounds : int
        Fit rounds; from the second on, every window's data has its neighbours' current
        Gaussians subtracted (1 fits each column alone).
    iterations : int
        Levenberg-Marquardt steps per round.
    threads : int, optional
        Threads the windows are split over (numpy releases the GIL in the fit's array work);
        default: :func:`~atomlens.locate.threads.thread_count` (what
        :func:`~atomlens.locate.threads.fit_threads` set, else the usable CPU cores, at most
        :data:`~atomlens.locate.threads.MOST_THREADS`). The result does not depend on it.
    narrowest, widest : float or ndarray (n,)
        Least and largest Gaussian width [px], for all columns or each (default 0.3 and the
        window's width): a weak column's fit may otherwise shrink onto a noise spike or
        spread over its neighbours.
    joint : bool
        After the rounds (with ``rounds`` > 1), fit columns that overlap strongly jointly
        with those neighbours (:mod:`atomlens.locate.coupled`): near the Cramer-Rao bound for
        blob-like (Gaussian) columns such as HAADF's; ``locate`` turns it off for ABF and
        HRTEM, whose column contrast is not a blob.
    initial : ndarray (n, 5), optional
        A fit to start from: amplitude, y, x [px, image coordinates], width [px] and
        background of every column. The first round then already has the neighbours'
        Gaussians subtracted (with ``rounds=1``, one round of the block iteration from it).

    Returns
    -------
    ColumnFit
        A fit that leaves its window, ends with a non-positive amplitude or has no finite
        uncertainty keeps its integer start position with ``converged`` False and NaN errors.
    """
    peaks = np.asarray(peaks, dtype=int).reshape(-1, 2)
    n = len(peaks)
    if n == 0:
        empty = {name: np.zeros(0) for name in ColumnFit.NAMES}
        return ColumnFit(empty | {"converged": np.zeros(0, dtype=bool)})
    narrowest = np.broadcast_to(np.asarray(narrowest, dtype=np.float64), n).copy()
    widest = np.broadcast_to(np.asarray(2.0 * half + 1 if widest is None else widest,
                                        dtype=np.float64), n).copy()  # fmt: skip
    raw, mask, start = _start(image, peaks, half, width)
    if initial is not None:
        start = np.array(initial, dtype=np.float64)
        if start.shape != (n, 5) or not np.isfinite(start).all():
            raise ValueError(
                f"initial=... must be finite (amplitude, y, x, width, background) of each of "
                f"the {n} columns, shape ({n}, 5), got {start.shape}."
            )
        start[:, 1:3] -= peaks
    params = start
    model = _WindowModel(raw, mask, half)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for round_ in range(max(1, rounds)):
            if round_ or initial is not None:
                inside = _inside(params, half)
                current = np.where(inside[:, None], params, 0.0)
                current[:, 3] = np.where(inside, params[:, 3], 1.0)  # no zero width
                signal = _neighbour_signal(peaks, current, half, float(width))
                model.data = raw - signal * mask
                params = np.where(inside[:, None], params, start)  # a lost fit starts again
                _set_weights(model, np.where(inside[:, None], params, start))
            warm = round_ or initial is not None
            steps = max(1, iterations // 2) if warm else iterations
            last = round_ == max(1, rounds) - 1
            tolerances = (STEP_TOLERANCE, COST_TOLERANCE) if last else EARLY_TOLERANCES
            params = _fit_windows(model, params, steps, widest, threads, tolerances, narrowest)
        # weighted: the covariance below is the WLS one
        cost, normal, _ = model.normal_equations(params)
        dof = np.maximum(mask.sum(axis=1) - 5, 1)
        covariance = _covariance(normal, cost / dof)
        # strongly overlapping neighbours fitted jointly, once their neighbours were fitted
        if joint and (rounds > 1 or initial is not None):
            bounds = (narrowest, widest)
            params, covariance = _refit_coupled(
                image, peaks, params, covariance, half, model, bounds, iterations, threads
            )
    sigma_y = np.sqrt(np.abs(covariance[:, 1, 1]))
    sigma_x = np.sqrt(np.abs(covariance[:, 2, 2]))
    ok = _inside(params, half) & np.isfinite(sigma_y) & np.isfinite(sigma_x)
    return ColumnFit(
        {
            "y": np.where(ok, peaks[:, 0] + params[:, 1], peaks[:, 0]),
            "x": np.where(ok, peaks[:, 1] + params[:, 2], peaks[:, 1]),
            "amplitude": np.where(ok, params[:, 0], np.nan),
            "width": np.where(ok, params[:, 3], np.nan),
            "background": np.where(ok, params[:, 4], np.nan),
            "intensity": np.where(ok, 2 * np.pi * params[:, 0] * params[:, 3] ** 2, np.nan),
            "sigma_y": np.where(ok, sigma_y, np.nan),
            "sigma_x": np.where(ok, sigma_x, np.nan),
            "sigma_amplitude": np.where(ok, np.sqrt(np.abs(covariance[:, 0, 0])), np.nan),
            "converged": ok,
        }
    )


#: Rounds of the joint fits of coupled columns (:mod:`atomlens.locate.coupled`) after the block
#: iteration; the second sees the first's positions of the columns around each group.
COUPLED_ROUNDS = 2


def _refit_coupled(
    image: np.ndarray,
    peaks: np.ndarray,
    params: np.ndarray,
    covariance: np.ndarray,
    half: int,
    blocks: _WindowModel,
    bounds: tuple[np.ndarray, np.ndarray],
    iterations: int,
    threads: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``params`` and ``covariance`` with every column that has coupled neighbours
    (:func:`~atomlens.locate.coupled.coupled_neighbours`) fitted again jointly with them, in a
    window of three of its widths with all other columns subtracted, weighted by the noise
    line of the block iteration's fit (``blocks``: its model); its covariance is then the
    joint fit's (its position unknown together with the neighbours'). A joint fit that fails
    keeps the block iteration's result. ``bounds``: least and largest width [px] per column.
    Only where the columns come in close groups
    (:func:`~atomlens.locate.coupled.in_pairs`), and for a column with at most
    :data:`~atomlens.locate.coupled.MOST_COUPLED` coupled neighbours."""
    index = np.flatnonzero(_inside(params, half))
    if len(index) < 2:
        return params, covariance
    # coupling is a matter of the probe and the lattice: judged by the typical width, since
    # a weak column's own width is noisy (at a few tens of counts the S2 columns of MoS2 got
    # coupled to Mo by their spread widths and lost to the significance tests)
    typical = float(np.median(params[index, 3]))
    if not in_pairs(peaks[index] + params[index, 1:3], typical):
        return params, covariance
    groups = coupled_neighbours(peaks[index] + params[index, 1:3], typical)
    counts = np.array([len(group) for group in groups])
    chosen = np.flatnonzero((counts > 0) & (counts <= MOST_COUPLED))
    big = int(min(max(half, math.ceil(3.0 * typical)), 3 * half))
    line = _noise_line(blocks, params)
    params, covariance = params.copy(), covariance.copy()
    for round_ in range(COUPLED_ROUNDS):
        current = params[index]
        centres = peaks[index] + current[:, 1:3]
        last = round_ == COUPLED_ROUNDS - 1
        for size in np.unique([len(groups[i]) for i in chosen]):
            rows = np.array([i for i in chosen if len(groups[i]) == size], dtype=int)
            near = np.array([groups[i] for i in rows], dtype=int)  # (r, m), local indices
            targets = index[rows]
            data, mask, _ = _start(image, peaks[targets], big, 1.0)
            excluded = np.column_stack([rows, near])
            data -= mask * others_signal(centres, current[:, 0], current[:, 3], peaks[targets],
                                         big, excluded)  # fmt: skip
            start = np.empty((len(rows), 5 + 3 * size))
            start[:, :5] = current[rows]
            start[:, 5::3] = current[near, 0]
            start[:, 6::3] = centres[near, 0] - peaks[targets, 0, None]
            start[:, 7::3] = centres[near, 1] - peaks[targets, 1, None]
            model = _GroupModel(data, mask, big, current[near, 3])
            _set_weights(model, start, line)
            tolerances = (STEP_TOLERANCE, COST_TOLERANCE) if last else EARLY_TOLERANCES
            fit = _fit_windows(model, start, iterations, bounds[1][targets], threads,
                               tolerances, bounds[0][targets])  # fmt: skip
            good = _inside(fit[:, :5], half)
            params[targets[good], :5] = fit[good, :5]
            if last:
                cost, normal, _ = model.normal_equations(fit)
                dof = np.maximum(mask.sum(axis=1) - fit.shape[1], 1)
                joint = _covariance(normal, cost / dof)[:, :5, :5]
                covariance[targets[good]] = joint[good]
    return params, covariance


def _covariance(normal: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """(n, p, p) ``variance (J^T W J)^-1`` of the normal matrices (n, p, p) and residual
    variances (n,); NaN for a degenerate window.

    One degenerate window (a zero amplitude leaves its position unconstrained; non-finite
    entries; a diagonal so small that its scale overflows, which had made the whole batch's
    SVD fail on a 100-frame hBN series) must not cost the others their errors; its own then
    fail the caller's checks. The parameters' units differ (the position rows scale with the
    amplitude, the amplitude row does not), so each matrix is scaled to a unit diagonal first:
    the pseudo-inverse's cut-off then sees the same matrix at any image scale (unscaled, the
    amplitude's error was cut off at 1e4 x the counts, and a fit's significance changed).
    """
    eye = np.eye(normal.shape[-1])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        normal = normal + 1e-12 * np.einsum("nii->ni", normal)[:, :, None] * eye
        degenerate = ~np.isfinite(normal).all(axis=(1, 2)) | ~np.isfinite(variance)
        degenerate |= np.einsum("nii->ni", np.nan_to_num(normal)).min(axis=1) <= 0
        normal[degenerate] = eye
        unit = 1.0 / np.sqrt(np.einsum("nii->ni", normal))
        outer = unit[:, :, None] * unit[:, None, :]
        scaled = normal * outer
        degenerate |= ~np.isfinite(scaled).all(axis=(1, 2))
        scaled[degenerate], outer[degenerate] = eye, 1.0
        covariance = _pseudo_inverse(scaled) * outer * variance[:, None, None]
    covariance[degenerate] = np.nan
    return covariance


def _pseudo_inverse(matrices: np.ndarray) -> np.ndarray:
    """``np.linalg.pinv`` of (n, p, p) finite matrices; where the batched SVD does not
    converge, each matrix on its own, NaN for those whose own SVD fails."""
    try:
        return np.linalg.pinv(matrices)
    except np.linalg.LinAlgError:
        result = np.full_like(matrices, np.nan)
        for i, matrix in enumerate(matrices):
            try:
                result[i] = np.linalg.pinv(matrix)
            except np.linalg.LinAlgError:
                pass
        return result


def _inside(params: np.ndarray, half: int) -> np.ndarray:
    """Fits that stayed in their window with a positive amplitude."""
    return (
        np.all(np.isfinite(params), axis=1)
        & (np.abs(params[:, 1]) <= half)
        & (np.abs(params[:, 2]) <= half)
        & (params[:, 0] > 0)
    )
