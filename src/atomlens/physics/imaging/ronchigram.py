"""Ronchigrams: the far-field intensity of a convergent probe after a specimen.

I(alpha) = |FFT[psi(r) t(r)]|^2 for a thin specimen, with multislice for a thick one. The detector
grid (energy, angular sampling [mrad / px], size) fixes the real-space grid: its extent is
lambda / angular sampling. A strongly aberrated probe spreads wider than that, so the simulation
runs on an ``oversampling`` times larger field (an odd factor) and integrates each detector pixel
over oversampling^2 sub-pixels; ``"auto"`` picks the factor from the geometric size of the probe,
r = (lambda / 2 pi) |grad_alpha chi|, maximised over the aperture.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from atomlens.core.energy import wavelength as electron_wavelength
from atomlens.core.validation import (
    check_device,
    check_optional,
    check_pair,
    check_parameter,
    check_size,
)
from atomlens.physics.detectors.base import Compose, Distortion
from atomlens.physics.imaging.multislice import fresnel_propagator, multislice
from atomlens.physics.optics.aberrations import Aberrations
from atomlens.physics.optics.probe import reciprocal_probes
from atomlens.physics.optics.transfer import (
    cartesian_coefficients,
    chi_basis,
    polar_angles,
    spatial_frequencies,
    used_terms,
)
from atomlens.physics.potentials.specimens import AmorphousSpecimen, Specimen

MAX_AUTO_OVERSAMPLING = 9
MAX_DETECTOR_ANGLE = 1000.0  # [mrad]


@dataclass(frozen=True)
class RonchigramSetup:
    """Illumination and detector geometry of a Ronchigram.

    Parameters
    ----------
    energy : float
        Beam energy [eV].
    semiangle : float
        Convergence semi-angle [mrad].
    angular_sampling : float
        Detector pixel size in scattering angle [mrad / px].
    size : int or (int, int)
        Detector pixels (rows, columns).
    edge_width : float or None
        Soft aperture edge [mrad]; None gives one detector pixel.
    source_size : float
        Standard deviation of the Gaussian source image at the specimen [Å].
    source_samples : int
        Probe positions averaged to model ``source_size`` (partial spatial coherence).
    """

    energy: float = 200e3
    semiangle: float = 30.0
    angular_sampling: float = 0.5
    size: int | tuple[int, int] = 256
    edge_width: float | None = None
    source_size: float = 0.0
    source_samples: int = 8

    def __post_init__(self) -> None:
        check_parameter("energy", self.energy)
        size = (self.size, self.size) if np.isscalar(self.size) else tuple(self.size)
        if len(size) != 2:
            raise ValueError(f"size=... must be one number or (rows, columns), got {self.size}.")
        object.__setattr__(self, "size", tuple(check_parameter("size", n) for n in size))
        check_parameter("semiangle", self.semiangle)
        check_parameter("angular_sampling", self.angular_sampling)
        check_optional("edge_width", self.edge_width)
        check_parameter("source_size", self.source_size)
        if not 1 <= self.source_samples <= 1024:
            raise ValueError(
                f"source_samples=... must lie in [1, 1024], got {self.source_samples}."
            )
        reach = self.angular_sampling * max(self.size) / 2
        if reach > MAX_DETECTOR_ANGLE:
            raise ValueError(
                f"The detector reaches {reach:.4g} mrad from its centre (angular_sampling=... "
                f"times half the size), beyond the {MAX_DETECTOR_ANGLE:g} mrad where the "
                "small-angle optics of the simulator hold; reduce angular_sampling or size."
            )

    @property
    def wavelength(self) -> float:
        """[Å]."""
        return electron_wavelength(self.energy)

    @property
    def sampling(self) -> float:
        """Real-space pixel size of the simulation grid [Å]."""
        return self.wavelength / (self.angular_sampling * 1e-3 * max(self.size))

    @property
    def extent(self) -> tuple[float, float]:
        """Real-space field of view without oversampling (rows, columns) [Å]."""
        return (self.size[0] * self.sampling, self.size[1] * self.sampling)

    @property
    def max_angle(self) -> float:
        """Largest scattering angle on the detector along an axis [mrad]."""
        return min(self.size) // 2 * self.angular_sampling

    def angles(self) -> tuple[np.ndarray, np.ndarray]:
        """Scattering angles of the detector pixels' centres (y, x), optical axis at size // 2.

        Returns
        -------
        alpha_y, alpha_x : ndarray of shape (rows,) and (columns,)
            [mrad].
        """
        rows, cols = ((np.arange(n) - n // 2) * self.angular_sampling for n in self.size)
        return rows, cols

    def probe_radii(self, coefficients: torch.Tensor, reach: float = 0.0) -> np.ndarray:
        """Geometric probe radii at the specimen, max of lambda |grad chi| / 2 pi over the aperture.

        Parameters
        ----------
        coefficients : Tensor of shape (B, len(BASIS))
            Cartesian aberration coefficients [Å].
        reach : float
            Extra angle beyond the semi-angle to include, e.g. the largest beam tilt [mrad].

        Returns
        -------
        ndarray of shape (B,)
            [Å].
        """
        radius = (self.semiangle + reach) * 1e-3
        step = radius / 24
        axis = torch.arange(-26, 27, dtype=torch.float64) * step
        alpha, phi = polar_angles(
            axis[:, None] / self.wavelength, axis[None, :] / self.wavelength, self.wavelength
        )
        basis = chi_basis(alpha, phi, self.wavelength)
        gy, gx = torch.gradient(basis, spacing=step, dim=(1, 2))
        inside = (alpha <= radius).flatten()
        gy = gy.flatten(1)[:, inside]
        gx = gx.flatten(1)[:, inside]
        slope = torch.hypot(coefficients @ gy, coefficients @ gx).amax(dim=1)
        return (self.wavelength / (2 * math.pi) * slope).numpy()

    def oversampling_for(self, radii: np.ndarray) -> list[int]:
        """Smallest odd oversampling factors whose field holds probes of these radii [Å]."""
        margin = 8.0 + 6 * self.source_size  # [Å]
        factors = []
        for radius in np.atleast_1d(radii):
            needed = 2 * radius + margin
            factor = max(1, math.ceil(needed / min(self.extent)))
            factor += 1 - factor % 2
            if factor > MAX_AUTO_OVERSAMPLING:
                warnings.warn(
                    f"The probe ({needed:.0f} Å across) needs oversampling {factor}; using "
                    f"{MAX_AUTO_OVERSAMPLING}, so the Ronchigram edge may alias. Use a finer "
                    "angular sampling or smaller aberrations.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                factor = MAX_AUTO_OVERSAMPLING
            factors.append(factor)
        return factors


def _bin(intensity: torch.Tensor, size: tuple[int, int], factor: int) -> torch.Tensor:
    """fftshift a fine far-field intensity and integrate it over detector pixels."""
    intensity = torch.fft.fftshift(intensity, dim=(-2, -1))
    if factor == 1:
        return intensity
    shifts = [n // 2 * factor + (factor - 1) // 2 - n * factor // 2 for n in size]
    intensity = torch.roll(intensity, shifts=shifts, dims=(-2, -1))
    batch = intensity.shape[0]
    return intensity.reshape(batch, size[0], factor, size[1], factor).sum(dim=(2, 4))


class _Engine:
    """Cached grids for one setup and oversampling factor."""

    def __init__(self, setup: RonchigramSetup, factor: int, device: str | None):
        self.setup, self.factor, self.device = setup, factor, device
        self.shape = (setup.size[0] * factor, setup.size[1] * factor)
        self.ky, self.kx = spatial_frequencies(self.shape, setup.sampling, device=device)
        self.alpha, self.phi = polar_angles(self.ky, self.kx, setup.wavelength)
        self.basis = chi_basis(self.alpha, self.phi, setup.wavelength)
        edge = setup.edge_width if setup.edge_width is not None else setup.angular_sampling
        self.edge = edge
        centre = [n // 2 * setup.sampling for n in self.shape]
        self.centre_ramp = torch.exp(-2j * math.pi * (self.ky * centre[0] + self.kx * centre[1]))
        self._propagators: dict[float, torch.Tensor] = {}

    def propagator(self, distance: float) -> torch.Tensor:
        if distance not in self._propagators:
            self._propagators[distance] = fresnel_propagator(
                self.ky, self.kx, self.setup.wavelength, distance
            )
        return self._propagators[distance]

    def probes(
        self, coefficients: torch.Tensor, tilts: torch.Tensor, shifts: torch.Tensor
    ) -> torch.Tensor:
        """Real-space probes (B, H, W), complex64, each sum |psi|^2 = 1."""
        terms = used_terms(coefficients)
        waves = reciprocal_probes(
            self.ky,
            self.kx,
            wavelength=self.setup.wavelength,
            semiangle=self.setup.semiangle,
            coefficients=coefficients[:, terms],
            edge_width=self.edge,
            tilts=tilts,
            basis=self.basis[terms],
        )
        ramp = self.centre_ramp * torch.exp(
            -2j
            * math.pi
            * (self.ky * shifts[:, 0, None, None] + self.kx * shifts[:, 1, None, None])
        )
        waves = waves * ramp
        norm = torch.sqrt((waves.abs() ** 2).sum(dim=(-2, -1), keepdim=True)).clamp_min(1e-30)
        return torch.fft.ifft2(waves / norm, norm="ortho").to(torch.complex64)

    def run(
        self,
        specimen: Specimen,
        coefficients: torch.Tensor,
        tilts: torch.Tensor,
        shifts: torch.Tensor,
        rngs: Sequence[np.random.Generator],
    ) -> torch.Tensor:
        """Normalised Ronchigrams (B, rows, columns), float64."""
        setup = self.setup
        samples = setup.source_samples if setup.source_size > 0 else 1
        offsets = [
            torch.from_numpy(
                np.stack([rng.normal(0, setup.source_size, 2) for rng in rngs])
                if setup.source_size > 0
                else np.zeros((len(rngs), 2))
            )
            for _ in range(samples)
        ]
        waves = torch.cat([self.probes(coefficients, tilts, shifts + off) for off in offsets])
        propagator = self.propagator(specimen.propagation_distance)
        slices = specimen.iter_slices(self.shape, setup.sampling, setup.energy, rngs, self.device)
        waves = multislice(waves, (t.repeat(samples, 1, 1) for t in slices), propagator)
        far_field = torch.fft.fft2(waves, norm="ortho").abs().to(torch.float64) ** 2
        far_field = far_field.reshape(samples, len(rngs), *self.shape).mean(dim=0)
        return _bin(far_field, setup.size, self.factor)


#: Engines of the most recent (setup, device), by oversampling factor. Building one costs about as
#: much as simulating a batch, and a dataset is simulated in many calls with one setup; keeping only
#: one setup's engines bounds the memory to what a single call needs anyway.
_ENGINES: dict[tuple[RonchigramSetup, int, str | None], _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(setup: RonchigramSetup, factor: int, device: str | None) -> _Engine:
    """The engine for this setup, oversampling factor and device, built only on a cache miss."""
    key = (setup, factor, None if device is None else str(device))
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            if any(k[0] != setup or k[2] != key[2] for k in _ENGINES):
                _ENGINES.clear()
            engine = _ENGINES[key] = _Engine(setup, factor, device)
    return engine


def simulate_ronchigrams(
    setup: RonchigramSetup,
    aberrations: Sequence[Aberrations],
    specimen: Specimen | None = None,
    *,
    tilts: np.ndarray | None = None,
    shifts: np.ndarray | None = None,
    detector: Compose | Distortion | None = None,
    seed: int = 0,
    oversampling: int | str = "auto",
    batch_size: int = 16,
    device: str | None = None,
    progress: bool = False,
    first_index: int = 0,
) -> np.ndarray:
    """Simulate a batch of Ronchigrams.

    Parameters
    ----------
    setup : RonchigramSetup
        Energy, convergence semi-angle, detector sampling and size.
    aberrations : sequence of Aberrations
        One per Ronchigram [Å, rad].
    specimen : Specimen, optional
        Default: 100 Å of amorphous carbon in 20 Å slices.
    tilts : array of shape (B, 2), optional
        Beam tilt (y, x) of each Ronchigram [mrad].
    shifts : array of shape (B, 2), optional
        Probe position (y, x) relative to the field centre [Å].
    detector : Compose or Distortion, optional
        The camera, applied to each normalised intensity, e.g.
        :func:`~atomlens.physics.detectors.ronchigram_camera`; None returns the intensity itself
        (each image then sums to 1 minus what is scattered beyond the detector).
    seed : int
        Ronchigram i draws its specimen and noise from
        ``numpy.random.default_rng([seed, first_index + i])``, so it is the same whatever the batch
        size, and a long dataset can be made in chunks.
    oversampling : int or "auto"
        Odd factor by which the field of view is enlarged (see module notes).
    batch_size : int
        Ronchigrams computed together.
    device : str, optional
        torch device, e.g. "cuda".
    progress : bool
        Show a progress bar.
    first_index : int
        Index of the first Ronchigram within a larger dataset (see ``seed``).

    Returns
    -------
    ndarray of shape (B, rows, columns), float32
        Intensity (or detector counts), optical axis at pixel (rows // 2, columns // 2).

    Notes
    -----
    The frequency grids and chi basis of each oversampling factor are built once and kept for
    later calls with the same setup and device (those of one setup at a time), so simulating a
    dataset in chunks costs no more than one call.
    """
    specimen = AmorphousSpecimen() if specimen is None else specimen
    aberrations = [a if isinstance(a, Aberrations) else Aberrations(a) for a in aberrations]
    count = len(aberrations)
    batch_size = check_parameter("batch_size", batch_size)
    device = check_device(device)
    check_size("the Ronchigrams", (count, *setup.size))
    tilts = _per_item(tilts, count, "tilts")
    for tilt in tilts:
        check_pair("tilts", tilt, kind="tilt")
    shifts = _per_item(shifts, count, "shifts")
    coefficients = cartesian_coefficients(aberrations)
    if oversampling == "auto":
        reach = float(np.hypot(*tilts.T).max()) if count else 0.0
        factors = setup.oversampling_for(setup.probe_radii(coefficients, reach))
    else:
        if int(oversampling) < 1 or int(oversampling) % 2 == 0:
            raise ValueError(f"oversampling must be a positive odd integer, got {oversampling}.")
        factors = [int(oversampling)] * count
    if factors:
        # The engine holds a batch of complex waves on the enlarged grid.
        grid = tuple(n * max(factors) for n in setup.size)
        check_size("one batch of waves", (min(batch_size, count), *grid), itemsize=8)
    out = np.empty((count, *setup.size), dtype=np.float32)
    bar = tqdm(total=count, desc="Ronchigrams", unit="img", disable=not progress)
    for start, stop, factor in _groups(factors, batch_size):
        engine = _engine(setup, factor, device)
        rngs = [np.random.default_rng([seed, first_index + i]) for i in range(start, stop)]
        intensity = (
            engine.run(
                specimen,
                coefficients[start:stop].to(device),
                torch.from_numpy(tilts[start:stop]).to(device),
                torch.from_numpy(shifts[start:stop]).to(device),
                rngs,
            )
            .cpu()
            .numpy()
        )
        for offset, image in enumerate(intensity):
            if detector is not None:
                image, _ = detector.apply(image, rngs[offset])
            out[start + offset] = image
        bar.update(stop - start)
    bar.close()
    return out


def simulate_ronchigram(
    setup: RonchigramSetup,
    aberrations: Aberrations,
    specimen: Specimen | None = None,
    *,
    tilt: tuple[float, float] = (0.0, 0.0),
    shift: tuple[float, float] = (0.0, 0.0),
    detector: Compose | Distortion | None = None,
    seed: int = 0,
    oversampling: int | str = "auto",
) -> np.ndarray:
    """One Ronchigram (rows, columns), float32; see :func:`simulate_ronchigrams`."""
    return simulate_ronchigrams(
        setup,
        [aberrations],
        specimen,
        tilts=np.array([tilt], dtype=float),
        shifts=np.array([shift], dtype=float),
        detector=detector,
        seed=seed,
        oversampling=oversampling,
    )[0]


def _per_item(values: np.ndarray | None, count: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros((count, 2))
    values = np.asarray(values, dtype=float)
    if values.shape != (count, 2) or not np.isfinite(values).all():
        raise ValueError(
            f"{name} must be a finite array of shape ({count}, 2), got {values.shape}."
        )
    return values


def _groups(factors: list[int], batch_size: int):
    """Consecutive runs of equal oversampling, at most batch_size long: (start, stop, factor)."""
    start = 0
    while start < len(factors):
        stop = start + 1
        while stop < len(factors) and stop - start < batch_size and factors[stop] == factors[start]:
            stop += 1
        yield start, stop, factors[start]
        start = stop
