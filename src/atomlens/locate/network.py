"""The segmentation networks of locate: input scale, structure tokens, labels, loss, inference.

Physics-informed input: before a network sees an image it is resampled so that neighbouring
columns lie :data:`CANONICAL_SPACING` px apart (the spacing given or estimated by the verb), its
background removed and dark columns negated (:mod:`atomlens.locate.preprocess`), and scaled to
zero median and unit spread. One network then serves every pixel size from 0.05 to 0.6 Å and
every material, and learns from small crops. The maps it returns are turned into column
candidates (:func:`column_candidates`) that the verb refines on the original image, so the
positions and uncertainties come from the same Gaussian fit as the classical path.

Structure tokens (:func:`structure_tokens`) describe the material for the structure-conditioned
model of paper 002: one token per projected column of the oriented unit cell (its position in
units of the nearest-neighbour column distance, its summed atomic number relative to the
heaviest column, that to the power 1.7 (HAADF contrast), its atom count relative to the largest)
and one per in-plane lattice vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from scipy import ndimage, spatial
from torch.nn import functional

from atomlens.nn.segmentation import SegmentationUNet
from atomlens.nn.tiling import apply_tiled

__all__ = [
    "ARCHITECTURES",
    "CANONICAL_SPACING",
    "CLASSES",
    "MAX_TOKENS",
    "TOKEN_FEATURES",
    "build_network",
    "column_candidates",
    "network_input",
    "predict_maps",
    "segmentation_loss",
    "structure_spacing",
    "structure_tokens",
    "to_canonical",
    "visible_columns",
]

#: Distance of neighbouring columns in the network's input [px].
CANONICAL_SPACING = 8.0
#: The maps: every visible column, and the heavier (brighter) columns among them.
CLASSES = ("column", "heavy")
#: Features per structure token and the most tokens (the heaviest columns are kept).
TOKEN_FEATURES = 7
MAX_TOKENS = 24
#: A column is labelled heavy when its summed Z is at least this share of the heaviest's.
HEAVY_SHARE = 0.6
#: In HAADF a column is visible when its summed Z is at least this share of the heaviest's (the
#: Z^1.7 contrast leaves O beside Sr at under 7 % of its height), as benchmarks/evaluate_locate.py
#: counts it; in ABF and HRTEM every column is.
HAADF_VISIBLE_SHARE = 0.25
#: Width of a column's label blob [canonical px].
LABEL_SIGMA = 1.2

ARCHITECTURES = {
    "unet": {"classes": len(CLASSES), "width": 16, "depth": 3, "structure_features": 0},
    "structure": {
        "classes": len(CLASSES),
        "width": 16,
        "depth": 3,
        "structure_features": TOKEN_FEATURES,
    },
}


def build_network(kind: str = "unet") -> SegmentationUNet:
    """A fresh segmentation network: ``"unet"`` or ``"structure"`` (conditioned)."""
    if kind not in ARCHITECTURES:
        raise ValueError(f"kind must be one of {tuple(ARCHITECTURES)}, got {kind!r}.")
    return SegmentationUNet(**ARCHITECTURES[kind])


def visible_columns(table: pd.DataFrame, modality: str) -> pd.DataFrame:
    """The columns a segmentation label marks: crystal columns (``ordered`` >= 0.5 where the
    table has it) that the modality shows, with ``heavy`` (bool) added."""
    crystal = table[table["ordered"] >= 0.5] if "ordered" in table else table
    if not len(crystal):
        return crystal.assign(heavy=np.zeros(0, bool))
    top = float(crystal["Z_sum"].max())
    if modality == "haadf":
        crystal = crystal[crystal["Z_sum"] >= HAADF_VISIBLE_SHARE * top]
    return crystal.assign(heavy=crystal["Z_sum"].to_numpy() >= HEAVY_SHARE * top)


def nearest_distance(points: np.ndarray) -> float:
    """Median nearest-neighbour distance of (n, 2) points (NaN for fewer than 3)."""
    if len(points) < 3:
        return math.nan
    return float(np.median(spatial.cKDTree(points).query(points, k=2)[0][:, 1]))


def to_canonical(image: np.ndarray, spacing: float) -> tuple[np.ndarray, tuple[float, float]]:
    """The image resampled so that columns ``spacing`` px apart become CANONICAL_SPACING apart.

    Shrinking averages (an area-weighted, anti-aliased resize) so that noise is not aliased;
    enlarging interpolates linearly. Returns the resampled image and the per-axis factors
    (canonical px per input px): an input pixel centre y maps to ``(y + 0.5) * f - 0.5``.
    """
    from skimage.transform import resize

    factor = CANONICAL_SPACING / spacing
    shape = tuple(max(8, round(n * factor)) for n in image.shape)
    resampled = resize(
        np.asarray(image, np.float64),
        shape,
        order=1,
        mode="reflect",
        anti_aliasing=factor < 1,
        preserve_range=True,
    )
    factors = (shape[0] / image.shape[0], shape[1] / image.shape[1])
    return resampled.astype(np.float32), factors


def normalise(image: np.ndarray) -> np.ndarray:
    """Zero median, unit 0.5-99.5 percentile spread, clipped to +-20, float32."""
    low, median, high = np.percentile(image, [0.5, 50, 99.5])
    spread = high - low if high > low else 1.0
    return np.clip((image - median) / spread, -20, 20).astype(np.float32)


def network_input(flat: np.ndarray, spacing: float) -> tuple[np.ndarray, tuple[float, float]]:
    """A background-free, columns-bright image as the network sees it, and the scale factors."""
    canonical, factors = to_canonical(flat, spacing)
    return normalise(canonical), factors


def label_maps(
    columns: pd.DataFrame, shape: tuple[int, int], factors: tuple[float, float]
) -> np.ndarray:
    """(2, rows, cols) float32 targets at canonical scale: Gaussians of peak 1 at every
    visible column (``columns`` from :func:`visible_columns`, ``y``, ``x`` in input px) and at
    the heavy ones."""
    maps = np.zeros((len(CLASSES), *shape), np.float32)
    if not len(columns):
        return maps
    y = (columns["y"].to_numpy() + 0.5) * factors[0] - 0.5
    x = (columns["x"].to_numpy() + 0.5) * factors[1] - 0.5
    heavy = columns["heavy"].to_numpy()
    reach = math.ceil(4 * LABEL_SIGMA)
    offsets = np.arange(-reach, reach + 1)
    for yc, xc, is_heavy in zip(y, x, heavy, strict=True):
        rows = round(yc) + offsets
        cols = round(xc) + offsets
        rows, cols = rows[(rows >= 0) & (rows < shape[0])], cols[(cols >= 0) & (cols < shape[1])]
        if not len(rows) or not len(cols):
            continue
        d2 = (rows[:, None] - yc) ** 2 + (cols[None, :] - xc) ** 2
        blob = np.exp(-d2 / (2 * LABEL_SIGMA**2)).astype(np.float32)
        for channel in (0, 1) if is_heavy else (0,):
            block = maps[channel, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            np.maximum(block, blob, out=block)
    return maps


@lru_cache(maxsize=256)
def _tokens(material: str, zone_axis: tuple[int, ...]) -> np.ndarray:
    from atomlens.physics.structures.lattice import columns, oriented_unit

    unit = oriented_unit(material, zone_axis)
    cell = np.asarray(unit.cell)[:2, :2]  # in-plane lattice vectors (x, y) [Å]
    table = columns(unit)
    xy = table[["x_A", "y_A"]].to_numpy()
    # the shortest column distance of the periodic arrangement (3 x 3 cells)
    shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ cell
    tiled = (xy[None] + shifts[:, None]).reshape(-1, 2)
    pairs = spatial.distance.cdist(xy, tiled)
    pairs[pairs < 0.3] = np.inf
    spacing = float(pairs.min())
    z = table["Z_sum"].to_numpy(float)
    count = table["count"].to_numpy(float)
    order = np.argsort(-z, kind="stable")[: MAX_TOKENS - 2]
    relative = z[order] / z.max()
    column_tokens = np.column_stack(
        [
            xy[order, 1] / spacing,
            xy[order, 0] / spacing,
            relative,
            relative**1.7,
            count[order] / count.max(),
            np.ones(len(order)),
            np.zeros(len(order)),
        ]
    )
    lattice_tokens = np.zeros((2, TOKEN_FEATURES))
    lattice_tokens[:, 0] = cell[:, 1] / spacing
    lattice_tokens[:, 1] = cell[:, 0] / spacing
    lattice_tokens[:, 6] = 1.0
    return np.vstack([lattice_tokens, column_tokens]).astype(np.float32)


@lru_cache(maxsize=256)
def _visible_spacing(material: str, zone_axis: tuple[int, ...], modality: str) -> float:
    from atomlens.physics.structures.lattice import columns, oriented_unit

    unit = oriented_unit(material, zone_axis)
    cell = np.asarray(unit.cell)[:2, :2]
    table = visible_columns(columns(unit), modality)
    xy = table[["x_A", "y_A"]].to_numpy()
    shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ cell
    distances = spatial.distance.cdist(xy, (xy[None] + shifts[:, None]).reshape(-1, 2))
    return float(distances[distances > 0.3].min())


def structure_spacing(material: object, zone_axis: Sequence[int] | None, modality: str) -> float:
    """The nearest-neighbour distance of the columns ``modality`` shows [Å] of a material seen
    along a zone axis (HAADF: summed Z at least a quarter of the heaviest column's), from its
    unit cell; what the labels of the networks are placed at."""
    zone = tuple(int(i) for i in (zone_axis if zone_axis is not None else (0, 0, 1)))
    if isinstance(material, str):
        return _visible_spacing(material, zone, modality)
    return _visible_spacing.__wrapped__(material, zone, modality)


def structure_tokens(
    material: object | None, zone_axis: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (MAX_TOKENS, TOKEN_FEATURES) float32 and padding mask (MAX_TOKENS,) bool.

    ``material`` is a name of :data:`atomlens.physics.structures.materials.MATERIALS` (or an
    ``ase.Atoms`` unit cell) seen along ``zone_axis``; None gives the "unknown structure" token
    alone (one zero token), which the conditioned model is also trained on.
    """
    tokens = np.zeros((MAX_TOKENS, TOKEN_FEATURES), np.float32)
    mask = np.ones(MAX_TOKENS, bool)
    if material is None:
        mask[0] = False
        return tokens, mask
    zone = tuple(int(i) for i in (zone_axis if zone_axis is not None else (0, 0, 1)))
    if isinstance(material, str):
        found = _tokens(material, zone)
    else:
        found = _tokens.__wrapped__(material, zone)
    tokens[: len(found)] = found
    mask[: len(found)] = False
    return tokens, mask


def segmentation_loss(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Binary cross-entropy of the maps against the soft targets plus a soft Dice term of the
    column map (columns cover a few % of the pixels: Dice keeps the network from answering
    "background" everywhere)."""
    bce = functional.binary_cross_entropy_with_logits(logits, targets)
    probability = torch.sigmoid(logits[:, 0])
    overlap = (probability * targets[:, 0]).sum((1, 2))
    total = probability.sum((1, 2)) + targets[:, 0].sum((1, 2))
    dice = 1 - ((2 * overlap + 1) / (total + 1)).mean()
    return bce + 0.1 * dice, {"bce": float(bce.detach()), "dice": float(dice.detach())}


@torch.no_grad()
def predict_maps(
    model: SegmentationUNet,
    image: np.ndarray,
    tokens: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    tile: int = 256,
    overlap: int = 32,
) -> np.ndarray:
    """Probability maps (classes, rows, cols) of a network-input image (:func:`network_input`),
    in overlapping tiles (sides padded to the network's multiple of 2**depth)."""
    device = next(model.parameters()).device
    multiple = 2**model.depth
    structure = mask = None
    if tokens is not None and model.structure_features:
        structure = torch.from_numpy(tokens[0][None]).to(device)
        mask = torch.from_numpy(tokens[1][None]).to(device)

    def run(tiles: np.ndarray) -> np.ndarray:
        rows, cols = tiles.shape[-2:]
        pad = ((0, 0), (0, -rows % multiple), (0, -cols % multiple))
        padded = torch.from_numpy(np.pad(tiles, pad, mode="reflect")[:, None]).to(device)
        count = len(tiles)
        logits = model(
            padded,
            None if structure is None else structure.expand(count, -1, -1),
            None if mask is None else mask.expand(count, -1),
        )
        return torch.sigmoid(logits).cpu().numpy()[..., :rows, :cols]

    return apply_tiled(image, run, tile=tile, overlap=overlap, batch=4)


def column_candidates(
    maps: np.ndarray, factors: tuple[float, float], *, level: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Column candidates of probability maps: integer (y, x) in input px and heavy (bool).

    A candidate is a local maximum of the column map within a disc of half the canonical
    spacing whose probability is at least ``level``; a plateau of equal maxima (a saturated
    probability, a label peak between pixels) is one candidate at its centre.
    """
    column = maps[0]
    radius = CANONICAL_SPACING / 2
    offsets = np.arange(-int(radius), int(radius) + 1)
    disc = np.hypot(*np.meshgrid(offsets, offsets, indexing="ij")) <= radius
    peak = (column == ndimage.maximum_filter(column, footprint=disc, mode="nearest")) & (
        column >= level
    )
    plateaus, count = ndimage.label(peak, structure=np.ones((3, 3)))
    if not count:
        return np.zeros((0, 2), int), np.zeros(0, bool)
    centres = np.asarray(ndimage.center_of_mass(peak, plateaus, range(1, count + 1)))
    rows, cols = np.rint(centres).astype(int).T
    heavy = maps[1][rows, cols] >= 0.5 if len(maps) > 1 else np.zeros(len(rows), bool)
    y = (rows + 0.5) / factors[0] - 0.5
    x = (cols + 0.5) / factors[1] - 0.5
    return np.column_stack([np.rint(y), np.rint(x)]).astype(int), heavy
