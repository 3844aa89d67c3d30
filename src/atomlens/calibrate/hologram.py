"""A Ronchigram as an in-line hologram of the specimen: the model behind the through-focus fit.

For a probe with the quadratic aberrations W = alpha^T M alpha / 2 (M = [[C10 - C12a, C12b],
[C12b, C10 + C12a]] in (y, x) order, Å) and a thin weak-phase specimen t = exp(i phi), the
wave at the detector angle alpha is, up to a phase, the specimen's Fresnel image at the
"distance" M seen at the shadow point x = M alpha + s (s the probe position):

    I(alpha) / I_0 = 1 + 2 F^-1[sin(pi lambda q^T M q) Phi(q)](M alpha + s),

with Phi the Fourier transform of phi (the stationary-phase shadow map of
:mod:`atomlens.calibrate.shadow` is the geometric part; the sine is the Fresnel part, which
changes the fine detail with defocus instead of only magnifying it). Images of one specimen at
known offsets O_i (M_i = M + O_i) share phi, so for a trial M the best phi is a linear least
squares problem, and the share of the images' contrast it leaves unexplained is small only near
the true M (variable projection). Higher orders (C21, C23, C30) enter the shadow map from the
given values; the Fresnel part uses the quadratic terms only.

The contrast is measured as the image divided by its smooth illumination (a Gaussian of
``background`` mrad inside the bright-field disc) minus one, smoothed by ``smooth`` detector
pixels; both filters are convolutions on the detector, so on the specimen they are Gaussians
stretched by M (exact for an affine shadow map) and enter the model as such. The specimen lives
on a periodic grid (``pixel`` Å) with a Gaussian resolution prior of ``resolution`` Å and a
small ridge; the least squares is solved by conjugate gradients, warm-started from the last
trial's specimen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, sparse

from atomlens.calibrate.series import DISC_EDGE, disc_mask, disc_smoothing
from atomlens.calibrate.shadow import gradient_basis

#: Largest specimen grid side [px]: one trial then takes seconds (at 0.25 Å and 30 mrad, a
#: defocus of about 370 nm with its offsets).
MAX_GRID = 1024


@dataclass(frozen=True)
class HologramOptions:
    """Settings of the through-focus (hologram) fit.

    Attributes
    ----------
    share : float
        Detector pixels used: within this share of the semi-angle (the disc edge is left out).
    background : float
        Scale of the smooth illumination divided out [mrad].
    smooth : float
        Smoothing of the contrast on the detector [px] (sigma), modelled exactly.
    resolution : float
        Gaussian resolution prior of the specimen's phase [Å] (sigma).
    pixel : float
        Specimen grid pixel [Å].
    ridge : float
        Ridge weight of the specimen's phase (relative to the model's unit transfer).
    iterations : int
        Conjugate-gradient steps per trial.
    scan : float
        Half-width of the coarse C10 scan about the start and about its mirror [Å].
    scan_step : float
        Step of that scan [Å].
    rescans : int
        Most repeats of that scan about each compass search's result (at its C12), searching
        again from a better C10 there: near focus the misfit has side minima 5-8 nm apart.
    step : float
        First step of the compass search over C10, C12a and C12b [Å], halved to ``tolerance``.
    tolerance : float
        Smallest compass step [Å].
    focus_weight : float
        After the first fit, each image is weighted by d^2 / (d^2 + focus_weight^2) for its
        smaller principal defocus d = |C10 + offset +- |C12|| there [Å], and a compass search
        refits from there: near focus a shadow collapses along one axis and the single-plane
        model fits worst. 0: no weights, no refit.
    near_focus : float
        Images with d under this at the first fit's state [Å] are left out of the refit
        (keeping at least three, the farthest from focus); 0 keeps every image.
    """

    share: float = 0.85
    background: float = 5.0
    smooth: float = 1.0
    resolution: float = 0.3
    pixel: float = 0.25
    ridge: float = 1e-2
    iterations: int = 25
    scan: float = 150.0
    scan_step: float = 15.0
    rescans: int = 2
    step: float = 16.0
    tolerance: float = 1.0
    focus_weight: float = 200.0
    near_focus: float = 0.0


def quadratic_matrix(values: np.ndarray) -> np.ndarray:
    """M [Å] of W = alpha^T M alpha / 2 from Cartesian (C10, C12a, C12b, ...) [Å], (y, x) order.

    Examples
    --------
    >>> quadratic_matrix(np.array([-300.0, 50.0, 20.0]))
    array([[-350.,   20.],
           [  20., -250.]])
    """
    c10, c12a, c12b = values[0], values[1], values[2]
    return np.array([[c10 - c12a, c12b], [c12b, c10 + c12a]])


def principal_defocus(values: np.ndarray) -> float:
    """The smaller principal defocus |C10 +- |C12|| [Å] of Cartesian (C10, C12a, C12b, ...)
    [Å]: the smaller magnitude of :func:`quadratic_matrix`'s eigenvalues, where the shadow
    collapses along one axis.

    Examples
    --------
    >>> principal_defocus(np.array([-300.0, 60.0, -80.0]))
    200.0
    """
    c10, c12 = values[0], float(np.hypot(values[1], values[2]))
    return float(min(abs(c10 - c12), abs(c10 + c12)))


def relative_contrast(
    image: np.ndarray,
    centre: np.ndarray,
    angular_sampling: float,
    semiangle: float,
    options: HologramOptions,
) -> np.ndarray:
    """Image / smooth illumination - 1 inside the bright-field disc, smoothed; 0 outside.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        Ronchigram [counts].
    centre : ndarray of shape (2,)
        Optical axis (row, column) [px].
    angular_sampling : float
        [mrad / px].
    semiangle : float
        [mrad].
    options : HologramOptions

    Returns
    -------
    ndarray of shape (H, W)
    """
    mask = disc_mask(image.shape, centre, DISC_EDGE * semiangle / angular_sampling)
    level = disc_smoothing(image, mask, options.background / angular_sampling)
    with np.errstate(all="ignore"):
        contrast = np.nan_to_num(np.where(mask > 0, image / level - 1, 0.0))
    if options.smooth:
        contrast = disc_smoothing(contrast, mask, options.smooth)
    return np.nan_to_num(contrast) * mask


class HologramSeries:
    """Ronchigrams of one specimen at known offsets and probe positions, as in-line holograms.

    Parameters
    ----------
    contrasts : sequence of ndarray of shape (P,)
        Each image's relative contrast (:func:`relative_contrast`) at the used pixels.
    alpha : ndarray of shape (P, 2)
        The used pixels' angles (y, x) [rad].
    offsets : ndarray of shape (N, 8)
        Cartesian offsets of each image [Å].
    shifts : ndarray of shape (N, 2)
        Probe position (y, x) of each image [Å].
    wavelength : float
        [Å].
    angular_sampling : float
        [mrad / px].
    options : HologramOptions
    weights : ndarray of shape (N,), optional
        Each image's weight in the least squares (default 1).

    Attributes
    ----------
    specimen : ndarray or None
        The specimen phase of the last trial [rad] on the specimen grid: the next trial's
        start (None: from zero).
    """

    def __init__(
        self,
        contrasts: list[np.ndarray],
        alpha: np.ndarray,
        offsets: np.ndarray,
        shifts: np.ndarray,
        wavelength: float,
        angular_sampling: float,
        options: HologramOptions,
        weights: np.ndarray | None = None,
    ) -> None:
        self.root = np.ones(len(contrasts)) if weights is None else np.sqrt(weights)
        contrasts = [c * r for c, r in zip(contrasts, self.root, strict=True)]
        self.contrasts = [np.asarray(c, dtype=np.float32) for c in contrasts]
        self.alpha = alpha
        self.offsets, self.shifts = np.asarray(offsets, float), np.asarray(shifts, float)
        self.wavelength, self.options = wavelength, options
        self.smooth = options.smooth * angular_sampling * 1e-3  # [rad]
        self.background = options.background * 1e-3  # [rad]
        self.total = float(sum(np.sum(np.square(c, dtype=np.float64)) for c in contrasts))
        self.basis = gradient_basis(alpha)  # (P, 2, 8)
        self.size = 0
        self.specimen: np.ndarray | None = None

    def fix_grid(self, values: np.ndarray, margin: float = 1.35) -> None:
        """Size the specimen grid for trials near ``values`` (Cartesian [Å]) and forget the
        warm start."""
        reach = max(np.abs(self.basis @ (values + offset)).max() for offset in self.offsets)
        reach = reach * margin + np.abs(self.shifts).max()
        size = fft.next_fast_len(int(2 * reach / self.options.pixel) + 8)
        if size > MAX_GRID:
            raise ValueError(
                f"The shadow images reach {reach:.0f} Å from the axis: a specimen grid of {size} "
                f"px at {self.options.pixel} Å, beyond {MAX_GRID}. The hologram fit is for "
                "defocus (with offsets) up to a few hundred nm and probe shifts of a few Å; "
                "use method='network' or 'physics' here."
            )
        self.size = size
        rows = fft.fftfreq(self.size, self.options.pixel)
        cols = fft.rfftfreq(self.size, self.options.pixel)
        self.q = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1)  # [1/Å]
        self.prior = np.exp(-2 * np.pi**2 * self.options.resolution**2 * (self.q**2).sum(-1))
        self.specimen = None

    def _setup(self, values: np.ndarray) -> None:
        """Each image's sampling of the specimen grid and its transfer, for aberrations
        ``values`` (Cartesian [Å])."""
        n, pixel = self.size, self.options.pixel
        self.samplers, transfers = [], []
        for offset, shift in zip(self.offsets, self.shifts, strict=True):
            total = values + offset
            points = self.basis @ total + shift  # [Å]
            grid = np.clip(points / pixel + n / 2, 0, n - 1.001)
            corner = np.floor(grid).astype(int)
            frac = grid - corner
            r, c = corner[:, 0], corner[:, 1]
            index = np.stack([r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1], 1)
            fy, fx = frac[:, 0], frac[:, 1]
            weight = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], 1)
            rows = np.repeat(np.arange(len(points)), 4)
            entries = (weight.ravel().astype(np.float32), (rows, index.ravel()))
            self.samplers.append(sparse.csr_matrix(entries, shape=(len(points), n * n)))
            matrix = quadratic_matrix(total)
            stretched = ((self.q @ matrix) ** 2).sum(-1)  # |M q|^2
            quad = np.einsum("abi,ij,abj->ab", self.q, matrix, self.q)
            filters = (1 - np.exp(-2 * np.pi**2 * self.background**2 * stretched)) * np.exp(
                -2 * np.pi**2 * self.smooth**2 * stretched
            )
            transfers.append(2 * np.sin(np.pi * self.wavelength * quad) * filters * self.prior)
        # Single precision halves the FFTs' time; the misfits compared differ by far more.
        self.transfers = np.stack(transfers).astype(np.float32)

    def _forward(self, phase: np.ndarray) -> list[np.ndarray]:
        """Every image's modelled contrast at its used pixels, for the specimen ``phase``."""
        fields = fft.irfft2(self.transfers * fft.rfft2(phase), s=(self.size, self.size))
        pairs = zip(self.samplers, fields, self.root, strict=True)
        return [(sampler @ field.ravel()) * r for sampler, field, r in pairs]

    def _adjoint(self, residuals: list[np.ndarray]) -> np.ndarray:
        """The adjoint of :meth:`_forward`: one specimen-grid image from every image's pixels
        (the filtered spreads are summed in Fourier space: one inverse FFT)."""
        n = self.size
        pairs = zip(self.samplers, residuals, self.root, strict=True)
        spread = np.stack([(sampler.T @ (residual * root)).reshape(n, n)
                           for sampler, residual, root in pairs])  # fmt: skip
        return fft.irfft2((self.transfers * fft.rfft2(spread)).sum(axis=0), s=(n, n))

    def unexplained(self, values: np.ndarray) -> float:
        """Share of the images' contrast that the best common specimen leaves unexplained at
        the aberrations ``values`` (Cartesian [Å], offset zero)."""
        self._setup(np.asarray(values, dtype=float))

        def normal(phase: np.ndarray) -> np.ndarray:
            return self._adjoint(self._forward(phase)) + self.options.ridge * phase

        rhs = self._adjoint(self.contrasts)
        phase = np.zeros_like(rhs) if self.specimen is None else self.specimen.copy()
        residual = rhs - normal(phase) if self.specimen is not None else rhs.copy()
        direction, power = residual.copy(), float(np.vdot(residual, residual))
        for _ in range(self.options.iterations):
            if power == 0:
                break
            image = normal(direction)
            step = power / float(np.vdot(direction, image))
            phase += step * direction
            residual -= step * image
            new = float(np.vdot(residual, residual))
            direction, power = residual + new / power * direction, new
        self.specimen = phase
        model = self._forward(phase)
        misfit = sum(float(np.sum((m - c) ** 2, dtype=np.float64))
                     for m, c in zip(model, self.contrasts, strict=True))  # fmt: skip
        return misfit / self.total
