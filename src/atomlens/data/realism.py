"""Specimen and optics effects that make simulated images look like real microscope images.

Real atomic-resolution images show more than a perfect crystal slab: the thickness changes across
the field (wedges), amorphous carbon covers the surfaces in layers and patches, part of the field is
amorphous, the background varies slowly, the STEM probe has long tails, and a slightly mistilted
specimen smears every column along one direction. The functions here add these effects. Two act on
the structure before rendering (amorphous atoms are rendered with the crystal, so they carry the
right physics of each modality); four act on the clean image. All of them change the specimen or
the optics, so they belong in the clean image, the restoration target; detector noise and scan
distortions are applied afterwards (:func:`atomlens.physics.detectors.realistic_stem` and friends).

:func:`draw_realism` draws a random set of effects with the strengths below (each on with the
given probability); :func:`apply_structure_effects` and :func:`apply_image_effects` apply them.

=====================  ================  ==============================  ============  ======
effect                 parameter         range                           law           chance
=====================  ================  ==============================  ============  ======
amorphous_layer        thickness         3 - 20 [Å]                      uniform       0.5
\\                      coverage          0.3 - 1 (area fraction)         uniform
\\                      patch_length      5 - 40 [Å]                      log-uniform
\\                      side              top or bottom                   uniform
amorphize_regions      fraction          0.1 - 0.5 (area fraction)       uniform       0.2
\\                      length            8 - 40 [Å]                      log-uniform
thickness_gradient     span              0.2 - 0.9 (relative, across)    uniform       0.5
\\                      direction         0 - 2 pi [rad]                  uniform
smooth_background      amplitude         0.05 - 1 (of the mean)          uniform       0.7
\\                      floor             0 - 1 (constant part, HAADF)    uniform
\\                      length            0.3 - 1 (of the image size)     uniform
\\                      order             0 - 2 (polynomial degree)       uniform int
probe_tail (STEM)      weight            0.02 - 0.15                     uniform       0.6
\\                      width             1 - 10 [Å]                      log-uniform
mistilt_blur           tilt              2 - 20 [mrad]                   uniform       0.4
\\                      thickness         20 - 300 [Å]                    log-uniform
\\                      direction         0 - 2 pi [rad]                  uniform
=====================  ================  ==============================  ============  ======

The rendered crystal slab is at most about 40 Å thick; the mistilt thickness is drawn separately
(a real specimen is 20 - 300 Å thick) and only sets the smear length. The thickness gradient scales
the contrast around the image's reference level (0 for HAADF, the vacuum level 1 for ABF and
HRTEM), which is the linear regime of HAADF; the contrast reversals of thick HRTEM specimens are
not modelled.
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms
from scipy import ndimage

from atomlens.core.validation import ParameterError, check_image
from atomlens.physics.structures.defects import append_atoms, fit_box
from atomlens.physics.structures.random_structures import amorphous_film

#: Effects and the probability each is drawn by :func:`draw_realism`.
CHANCES = {
    "amorphous_layer": 0.5,
    "amorphize_regions": 0.2,
    "thickness_gradient": 0.5,
    "smooth_background": 0.7,
    "probe_tail": 0.6,
    "mistilt_blur": 0.4,
}

#: Atom density of amorphous carbon at about 2 g/cm^3 [atoms / Å^3].
CARBON_DENSITY = 0.1


def _check(name: str, value: float, low: float, high: float, unit: str = "") -> float:
    """``value`` as a float in [low, high], or ParameterError naming the keyword and the fix."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}=... must be a number, got {value!r}.") from None
    if not (math.isfinite(number) and low <= number <= high):
        unit = f" {unit}" if unit else ""
        raise ParameterError(f"{name}=... must lie in [{low:g}, {high:g}]{unit}, got {value!r}.")
    return number


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _frequencies(shape: tuple[int, int], pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """FFT grid frequencies (ky, kx) [1/Å] of an image."""
    ky = np.fft.fftfreq(shape[0], pixel_size)[:, None]
    kx = np.fft.fftfreq(shape[1], pixel_size)[None, :]
    return ky, kx


def _filter(image: np.ndarray, transfer: np.ndarray) -> np.ndarray:
    """Periodic convolution of an image with a kernel given by its transfer function."""
    return np.fft.ifft2(np.fft.fft2(image) * transfer).real.astype(np.float32)


def smooth_field(shape: tuple[int, int], length: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [0, 1]: Gaussian-filtered white noise of correlation ``length``.

    Parameters
    ----------
    shape : (int, int)
        [px].
    length : float
        Standard deviation of the Gaussian filter [px].
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape ``shape``, float64
        Rescaled to span [0, 1] exactly.
    """
    field = ndimage.gaussian_filter(rng.standard_normal(shape), length, mode="wrap")
    span = np.ptp(field)
    return (field - field.min()) / span if span > 0 else np.zeros(shape)


# ------------------------------------------------------------------------------------------------
# Structure effects (before rendering)


def _xy_mask(atoms: Atoms, pixel_size: float, mask: np.ndarray) -> np.ndarray:
    """Whether each atom lies over a true pixel of ``mask`` (rows y, cols x)."""
    rows = np.clip(np.floor(atoms.positions[:, 1] / pixel_size + 0.5).astype(int), 0, None)
    cols = np.clip(np.floor(atoms.positions[:, 0] / pixel_size + 0.5).astype(int), 0, None)
    rows %= mask.shape[0]
    cols %= mask.shape[1]
    return mask[rows, cols]


def _shape(atoms: Atoms, pixel_size: float) -> tuple[int, int]:
    cell = np.asarray(atoms.cell)
    return round(cell[1, 1] / pixel_size), round(cell[0, 0] / pixel_size)


def add_amorphous_layer(
    atoms: Atoms,
    pixel_size: float,
    rng: np.random.Generator,
    *,
    thickness: float,
    coverage: float = 1.0,
    patch_length: float = 20.0,
    side: str = "top",
    element: str | int = "C",
    density: float = CARBON_DENSITY,
) -> Atoms:
    """An amorphous surface layer or contamination patches on a field.

    Amorphous atoms (:func:`~atomlens.physics.structures.random_structures.amorphous_film`) fill
    a layer of local thickness ``thickness * t(x, y)`` on one surface, ``t`` a smooth random
    field: ``coverage`` 1 gives a continuous layer of varying thickness, lower values leave the
    fraction ``1 - coverage`` of the area bare (patchy contamination).

    Parameters
    ----------
    atoms : ase.Atoms
        A field box (``structures.field``); not modified.
    pixel_size : float
        [Å]; the field box is a whole number of pixels.
    rng : numpy.random.Generator
    thickness : float
        Largest local thickness of the layer, 0.5 - 100 [Å].
    coverage : float
        Covered area fraction, 0.05 - 1.
    patch_length : float
        Correlation length of the thickness map, 1 - 1000 [Å].
    side : {"top", "bottom"}
        Beam exit side ("top", above the highest atom) or entrance side.
    element : str or int
    density : float
        [atoms / Å^3]; 0.1 is amorphous carbon.

    Returns
    -------
    ase.Atoms
        A copy with the layer added (array ``region`` 2 where present).
    """
    thickness = _check("thickness", thickness, 0.5, 100.0, "Å")
    coverage = _check("coverage", coverage, 0.05, 1.0)
    patch_length = _check("patch_length", patch_length, 1.0, 1000.0, "Å")
    if side not in ("top", "bottom"):
        raise ParameterError(f"side=... must be 'top' or 'bottom', got {side!r}.")
    shape = _shape(atoms, pixel_size)
    film = amorphous_film(shape, pixel_size, thickness, element=element, density=density, rng=rng)
    local = smooth_field(shape, patch_length / pixel_size, rng)
    # The bare fraction 1 - coverage sits below the threshold; thickness grows from it to the peak.
    level = np.quantile(local, 1.0 - coverage) if coverage < 1 else local.min() - 0.3
    local = np.clip((local - level) / (1.0 - level), 0.0, 1.0)
    rows = np.floor(film.positions[:, 1] / pixel_size).astype(int) % shape[0]
    cols = np.floor(film.positions[:, 0] / pixel_size).astype(int) % shape[1]
    keep = film.positions[:, 2] < thickness * local[rows, cols]
    positions = film.positions[keep]
    z = atoms.positions[:, 2] if len(atoms) else np.zeros(1)
    if side == "top":
        positions[:, 2] += z.max() + 1.5
    else:
        positions[:, 2] = z.min() - 1.5 - positions[:, 2]
    values = {"region": 2} if "region" in atoms.arrays else {}
    result = append_atoms(atoms, film.numbers[keep], positions, **values)
    fit_box(result)
    return result


def amorphize_regions(
    atoms: Atoms,
    pixel_size: float,
    rng: np.random.Generator,
    *,
    fraction: float,
    length: float = 20.0,
    density: float | None = None,
) -> tuple[Atoms, np.ndarray]:
    """Replace the crystal by amorphous material of the same elements in random regions.

    The regions are where a smooth random field (correlation ``length``) lies above its
    ``1 - fraction`` quantile. Their atoms are removed and the same slab (the crystal's z range)
    is filled with random atoms drawn from the crystal's composition.

    Parameters
    ----------
    atoms : ase.Atoms
        A field box; not modified.
    pixel_size : float
        [Å].
    rng : numpy.random.Generator
    fraction : float
        Area fraction made amorphous, 0.01 - 0.95.
    length : float
        Correlation length of the region map, 1 - 1000 [Å].
    density : float, optional
        Of the amorphous part [atoms / Å^3]; default: the crystal's, capped at 0.1.

    Returns
    -------
    atoms : ase.Atoms
        A copy with amorphous regions.
    mask : ndarray of bool, shape (rows, cols)
        The amorphous pixels.
    """
    fraction = _check("fraction", fraction, 0.01, 0.95)
    length = _check("length", length, 1.0, 1000.0, "Å")
    shape = _shape(atoms, pixel_size)
    field = smooth_field(shape, length / pixel_size, rng)
    mask = field > np.quantile(field, 1.0 - fraction)
    if not len(atoms):
        return atoms.copy(), mask
    inside = _xy_mask(atoms, pixel_size, mask)
    z = atoms.positions[:, 2]
    depth = max(float(np.ptp(z)), 2.0)
    area = shape[0] * shape[1] * pixel_size**2
    if density is None:
        density = min(len(atoms) / (area * depth), 0.1)
    film = amorphous_film(shape, pixel_size, depth, density=density, rng=rng)
    keep = _xy_mask(film, pixel_size, mask)
    positions = film.positions[keep]
    positions[:, 2] += z.min()
    numbers = rng.choice(atoms.numbers, size=len(positions))
    result = append_atoms(atoms[~inside], numbers, positions)
    result.info.update(atoms.info)
    return result, mask


# ------------------------------------------------------------------------------------------------
# Image effects (after rendering, before the detector)


def thickness_gradient(
    image: np.ndarray,
    pixel_size: float,
    *,
    span: float,
    direction: float,
    reference: float = 0.0,
) -> np.ndarray:
    """A wedge: contrast proportional to a thickness that changes linearly across the image.

    The thickness relative to the image centre is ``m(r) = 1 + slope * (r - centre) . u`` with
    ``u = (cos direction, sin direction)`` in (x, y) and ``slope = span / L`` (L the image's extent
    along ``u``), so m changes by ``span`` from one side to the other. The image becomes
    ``reference + (image - reference) * m``: HAADF (reference 0) scales linearly with thickness,
    ABF and HRTEM (reference 1, vacuum) change their contrast.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Clean image.
    pixel_size : float
        [Å].
    span : float
        Relative thickness change across the image, 0 - 1.8 (m stays >= 0.1).
    direction : float
        Direction of increasing thickness [rad] from +x towards +y.
    reference : float
        Intensity of zero thickness (0 for HAADF, 1 for ABF / HRTEM).

    Returns
    -------
    ndarray of float32
    """
    image = check_image("image", image)
    span = _check("span", span, 0.0, 1.8)
    _check("pixel_size", pixel_size, 1e-3, 100.0, "Å")
    m = thickness_map(image.shape, span=span, direction=direction)
    return (reference + (image - reference) * m).astype(np.float32)


def thickness_map(shape: tuple[int, int], *, span: float, direction: float) -> np.ndarray:
    """The relative thickness map of :func:`thickness_gradient` (1 at the centre)."""
    rows, cols = shape
    y = np.arange(rows)[:, None] - (rows - 1) / 2
    x = np.arange(cols)[None, :] - (cols - 1) / 2
    u = (math.cos(direction), math.sin(direction))
    extent = abs(u[0]) * (cols - 1) + abs(u[1]) * (rows - 1)
    return 1.0 + span * (x * u[0] + y * u[1]) / max(extent, 1.0)


def smooth_background(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    length: float,
    order: int = 2,
) -> np.ndarray:
    """A slowly varying background field in [0, 1]: a random low-order polynomial plus a smooth
    random field of correlation ``length`` [px].

    Its power lies at spatial frequencies below about ``1 / (2 pi length)`` [1/px].

    Parameters
    ----------
    shape : (int, int)
        [px].
    rng : numpy.random.Generator
    length : float
        Correlation length of the random part [px], >= 2.
    order : int
        Degree of the polynomial part, 0 - 3.

    Returns
    -------
    ndarray of float32
    """
    length = _check("length", length, 2.0, 1e5, "px")
    order = int(_check("order", order, 0, 3))
    rows, cols = shape
    y = np.linspace(-1, 1, rows)[:, None]
    x = np.linspace(-1, 1, cols)[None, :]
    poly = np.zeros(shape)
    for i in range(order + 1):
        for j in range(order + 1 - i):
            poly = poly + rng.normal() * y**i * x**j
    field = smooth_field(shape, length, rng)
    span = np.ptp(poly)
    poly = (poly - poly.min()) / span if span > 0 else np.zeros(shape)
    total = poly + field
    return ((total - total.min()) / max(np.ptp(total), 1e-12)).astype(np.float32)


def add_background(
    image: np.ndarray,
    background: np.ndarray,
    *,
    amplitude: float,
    floor: float = 0.0,
    mode: str = "add",
) -> np.ndarray:
    """Add a background field b (in [0, 1]) to an image.

    Parameters
    ----------
    image : ndarray (rows, cols)
    background : ndarray (rows, cols)
        From :func:`smooth_background`.
    amplitude : float
        0 - 2; ``"add"``: the background's peak in units of the image mean, ``image + amplitude *
        mean * (floor + (1 - floor) b)`` (diffuse scattering in HAADF: a pedestal under the
        columns that varies slowly); ``"multiply"``: relative illumination change, ``image * (1 +
        amplitude * (b - mean b))`` (ABF / HRTEM uneven illumination).
    floor : float
        0 - 1; the constant part of the added background (``"add"`` only).
    mode : {"add", "multiply"}
    """
    image = check_image("image", image)
    amplitude = _check("amplitude", amplitude, 0.0, 2.0)
    floor = _check("floor", floor, 0.0, 1.0)
    if background.shape != image.shape:
        raise ParameterError(
            f"background=... must have the image's shape {image.shape}, got {background.shape}."
        )
    if mode == "add":
        added = amplitude * float(np.abs(image).mean()) * (floor + (1 - floor) * background)
        return (image + added).astype(np.float32)
    if mode == "multiply":
        change = np.clip(1.0 + amplitude * (background - background.mean()), 0.05, None)
        return (image * change).astype(np.float32)
    raise ParameterError(f"mode=... must be 'add' or 'multiply', got {mode!r}.")


def probe_tail(image: np.ndarray, pixel_size: float, *, weight: float, width: float) -> np.ndarray:
    """Long probe tails: a fraction ``weight`` of the intensity spread by a Lorentzian-like kernel.

    The kernel ``K(r) ~ (1 + r^2 / width^2)^(-3/2)`` has the transfer function
    ``exp(-2 pi width |q|)`` (its 2D Fourier transform), so the image becomes
    ``(1 - weight) image + weight (K * image)``: total intensity is conserved exactly (periodic
    convolution), columns lose ``weight`` of their peak to a halo decaying as ``r^-3``.

    Parameters
    ----------
    image : ndarray (rows, cols)
    pixel_size : float
        [Å].
    weight : float
        Fraction of the intensity in the tail, 0 - 0.5.
    width : float
        Scale of the tail, 0.1 - 100 [Å].

    Returns
    -------
    ndarray of float32
    """
    image = check_image("image", image)
    weight = _check("weight", weight, 0.0, 0.5)
    width = _check("width", width, 0.1, 100.0, "Å")
    pixel_size = _check("pixel_size", pixel_size, 1e-3, 100.0, "Å")
    ky, kx = _frequencies(image.shape, pixel_size)
    transfer = (1 - weight) + weight * np.exp(-2 * math.pi * width * np.hypot(ky, kx))
    return _filter(image, transfer)


def mistilt_blur(
    image: np.ndarray,
    pixel_size: float,
    *,
    tilt: float,
    thickness: float,
    direction: float,
) -> np.ndarray:
    """Specimen mistilt: every column smeared along the tilt direction.

    A column tilted by ``tilt`` projects over a length ``L = tilt * thickness``; it is modelled as
    a Gaussian blur along ``u = (cos direction, sin direction)`` (x, y) of the same second moment
    as a uniform smear, ``sigma = L / sqrt(12)``, and none across. Total intensity is conserved.

    Parameters
    ----------
    image : ndarray (rows, cols)
    pixel_size : float
        [Å].
    tilt : float
        Mistilt 0 - 100 [mrad].
    thickness : float
        Specimen thickness 0 - 2000 [Å].
    direction : float
        Tilt direction [rad] from +x towards +y.

    Returns
    -------
    ndarray of float32
    """
    image = check_image("image", image)
    tilt = _check("tilt", tilt, 0.0, 100.0, "mrad")
    thickness = _check("thickness", thickness, 0.0, 2000.0, "Å")
    pixel_size = _check("pixel_size", pixel_size, 1e-3, 100.0, "Å")
    sigma = tilt * 1e-3 * thickness / math.sqrt(12)  # [Å]
    ky, kx = _frequencies(image.shape, pixel_size)
    along = kx * math.cos(direction) + ky * math.sin(direction)
    return _filter(image, np.exp(-2 * math.pi**2 * sigma**2 * along**2))


# ------------------------------------------------------------------------------------------------
# Random draws


def draw_realism(
    rng: np.random.Generator, *, stem: bool, chances: dict[str, float] | None = None
) -> dict:
    """Draw which effects are on and their strengths (table in the module docstring).

    Parameters
    ----------
    rng : numpy.random.Generator
    stem : bool
        Whether the image is STEM (probe tails only there).
    chances : dict, optional
        Effect name -> probability (0 - 1) replacing those of :data:`CHANCES` (e.g. 0 to turn
        one effect off); the same random numbers are drawn for the on/off decisions.

    Returns
    -------
    dict
        Effect name -> its parameters, or None when off (JSON-friendly).
    """
    chances = {**CHANCES, **(chances or {})}
    if set(chances) != set(CHANCES):
        unknown = sorted(set(chances) - set(CHANCES))
        raise ParameterError(f"chances=... has unknown effects {unknown}; use {sorted(CHANCES)}.")
    for name, chance in chances.items():
        _check(f"chances[{name!r}]", chance, 0.0, 1.0)
    on = {name: bool(rng.uniform() < chances[name]) for name in CHANCES}
    if not stem:
        on["probe_tail"] = False
    drawn: dict = dict.fromkeys(CHANCES)
    if on["amorphous_layer"]:
        drawn["amorphous_layer"] = {
            "thickness_A": float(rng.uniform(3, 20)),
            "coverage": float(rng.uniform(0.3, 1.0)),
            "patch_length_A": _log_uniform(rng, 5, 40),
            "side": str(rng.choice(["top", "bottom"])),
        }
    if on["amorphize_regions"]:
        drawn["amorphize_regions"] = {
            "fraction": float(rng.uniform(0.1, 0.5)),
            "length_A": _log_uniform(rng, 8, 40),
        }
    if on["thickness_gradient"]:
        drawn["thickness_gradient"] = {
            "span": float(rng.uniform(0.2, 0.9)),
            "direction_rad": float(rng.uniform(0, 2 * math.pi)),
        }
    if on["smooth_background"]:
        drawn["smooth_background"] = {
            "amplitude": float(rng.uniform(0.05, 1.0)),
            "floor": float(rng.uniform(0.0, 1.0)),
            "length_fraction": float(rng.uniform(0.3, 1.0)),
            "order": int(rng.integers(0, 3)),
        }
    if on["probe_tail"]:
        drawn["probe_tail"] = {
            "weight": float(rng.uniform(0.02, 0.15)),
            "width_A": _log_uniform(rng, 1, 10),
        }
    if on["mistilt_blur"]:
        drawn["mistilt_blur"] = {
            "tilt_mrad": float(rng.uniform(2, 20)),
            "thickness_A": _log_uniform(rng, 20, 300),
            "direction_rad": float(rng.uniform(0, 2 * math.pi)),
        }
    return drawn


def apply_structure_effects(
    atoms: Atoms, pixel_size: float, drawn: dict, rng: np.random.Generator
) -> Atoms:
    """Apply the drawn amorphous regions, then the amorphous layer, to a field (a copy)."""
    if drawn.get("amorphize_regions"):
        p = drawn["amorphize_regions"]
        atoms, mask = amorphize_regions(
            atoms, pixel_size, rng, fraction=p["fraction"], length=p["length_A"]
        )
        p["area_fraction"] = float(mask.mean())
    if drawn.get("amorphous_layer"):
        p = drawn["amorphous_layer"]
        before = len(atoms)
        atoms = add_amorphous_layer(
            atoms,
            pixel_size,
            rng,
            thickness=p["thickness_A"],
            coverage=p["coverage"],
            patch_length=p["patch_length_A"],
            side=p["side"],
        )
        p["atoms"] = len(atoms) - before
    return atoms


def apply_image_effects(
    clean: np.ndarray,
    pixel_size: float,
    drawn: dict,
    rng: np.random.Generator,
    *,
    reference: float,
) -> np.ndarray:
    """Apply the drawn optics and specimen effects to a clean image, in physical order.

    Thickness gradient (specimen), mistilt (specimen), probe tail (optics), background.

    Parameters
    ----------
    clean : ndarray (rows, cols)
    pixel_size : float
        [Å].
    drawn : dict
        From :func:`draw_realism`.
    rng : numpy.random.Generator
        For the background field.
    reference : float
        Zero-thickness intensity: 0 for HAADF, 1 (vacuum) for ABF / HRTEM; HAADF gets an additive
        background, the others an uneven illumination.
    """
    image = check_image("clean", clean)
    if drawn.get("thickness_gradient"):
        p = drawn["thickness_gradient"]
        image = thickness_gradient(
            image, pixel_size, span=p["span"], direction=p["direction_rad"], reference=reference
        )
    if drawn.get("mistilt_blur"):
        p = drawn["mistilt_blur"]
        image = mistilt_blur(
            image,
            pixel_size,
            tilt=p["tilt_mrad"],
            thickness=p["thickness_A"],
            direction=p["direction_rad"],
        )
    if drawn.get("probe_tail"):
        p = drawn["probe_tail"]
        image = probe_tail(image, pixel_size, weight=p["weight"], width=p["width_A"])
    if drawn.get("smooth_background"):
        p = drawn["smooth_background"]
        length = max(2.0, p["length_fraction"] * min(image.shape) / 2)
        background = smooth_background(image.shape, rng, length=length, order=p["order"])
        mode = "add" if reference == 0 else "multiply"
        image = add_background(
            image, background, amplitude=p["amplitude"], floor=p["floor"], mode=mode
        )
    return np.clip(image, 0, None).astype(np.float32)


__all__ = [
    "CHANCES",
    "add_amorphous_layer",
    "add_background",
    "amorphize_regions",
    "apply_image_effects",
    "apply_structure_effects",
    "draw_realism",
    "mistilt_blur",
    "probe_tail",
    "smooth_background",
    "smooth_field",
    "thickness_gradient",
    "thickness_map",
]
