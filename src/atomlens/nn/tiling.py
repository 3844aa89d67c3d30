"""Networks on images of any size: overlapping tiles joined with a smooth weight.

A large image then costs memory linear in its size and shows no seams. Restore runs its
restoration network through :func:`apply_tiled`, locate its segmentation networks (whose output
has a channel axis: one map per class).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["apply_tiled", "blend_window", "predict_padded", "tile_starts"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start indices of tiles of ``tile`` px that cover ``length`` px, overlapping >= ``overlap``.

    The last tile ends at the edge; a length shorter than a tile gives one tile at 0.

    Examples
    --------
    >>> tile_starts(300, 128, 32)
    [0, 86, 172]
    >>> tile_starts(100, 128, 32)
    [0]
    """
    if tile <= overlap:
        raise ValueError(f"tile={tile} px must be larger than overlap={overlap} px.")
    if length <= tile:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_window(tile: int, overlap: int, *, first: bool = False, last: bool = False) -> np.ndarray:
    """1D weight of a tile along one axis: 0 in a guard band, a raised-cosine ramp, then 1.

    At an edge shared with a neighbour the weight is 0 over the outer ``overlap // 4`` px (where
    a network sees the tile's artificial border) and rises smoothly over the rest of the overlap;
    at an image edge (``first`` / ``last``) it is 1, since no other tile covers those pixels.
    Neighbouring tiles overlap by at least ``overlap`` px, so their weights always sum to more
    than 0 and the normalised blend changes smoothly from one tile to the next (no seam).
    """
    weight = np.ones(tile, dtype=np.float64)
    guard = overlap // 4
    width = overlap - guard
    if width > 0:
        ramp = np.zeros(overlap)
        ramp[guard:] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
        if not first:
            weight[:overlap] = ramp
        if not last:
            weight[-overlap:] = ramp[::-1]
    return weight


def apply_tiled(
    image: np.ndarray,
    function: Callable[[np.ndarray], np.ndarray],
    *,
    tile: int = 256,
    overlap: int = 32,
    batch: int = 4,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """``function`` on overlapping tiles of a 2D image, blended smoothly.

    A pixel's result comes only from tiles in which it lies at least ``overlap // 4`` px from a
    tile border that is not an image border, so an operator whose reach is under that gives
    exactly the untiled result.

    Parameters
    ----------
    image : ndarray (rows, cols)
        Any size; an image smaller than ``tile`` is processed whole.
    function : callable
        ``function(tiles)`` maps a (n, h, w) float32 array to one of the same shape, or to
        (n, channels, h, w) (one map per channel, e.g. per class).
    tile, overlap : int
        Tile size and the least overlap of neighbours [px].
    batch : int
        Tiles per call of ``function``.
    progress : callable, optional
        Called with the number of tiles finished after each batch.

    Returns
    -------
    ndarray (rows, cols) or (channels, rows, cols), float32

    Examples
    --------
    >>> image = np.random.default_rng(0).normal(size=(300, 200))
    >>> bool(np.allclose(apply_tiled(image, lambda t: 2 * t, tile=64, overlap=16), 2 * image))
    True
    """
    rows, cols = image.shape
    tile_y, tile_x = min(tile, rows), min(tile, cols)
    overlap_y, overlap_x = min(overlap, tile_y // 2), min(overlap, tile_x // 2)
    starts_y = tile_starts(rows, tile_y, overlap_y) if rows > tile_y else [0]
    starts_x = tile_starts(cols, tile_x, overlap_x) if cols > tile_x else [0]
    starts = [(y, x) for y in starts_y for x in starts_x]
    total: np.ndarray | None = None
    norm = np.zeros((rows, cols), dtype=np.float64)
    for first in range(0, len(starts), batch):
        group = starts[first : first + batch]
        tiles = np.stack([image[y : y + tile_y, x : x + tile_x] for y, x in group])
        out = np.asarray(function(tiles.astype(np.float32)), dtype=np.float64)
        if total is None:
            total = np.zeros((*out.shape[1:-2], rows, cols), dtype=np.float64)
        for (y, x), result in zip(group, out, strict=True):
            weight = np.outer(
                blend_window(tile_y, overlap_y, first=y == 0, last=y + tile_y == rows),
                blend_window(tile_x, overlap_x, first=x == 0, last=x + tile_x == cols),
            )
            total[..., y : y + tile_y, x : x + tile_x] += weight * result
            norm[y : y + tile_y, x : x + tile_x] += weight
        if progress is not None:
            progress(len(group))
    return (total / norm).astype(np.float32)


def predict_padded(model, tiles: np.ndarray, *, dtype=None) -> np.ndarray:
    """An image-to-image network on (n, h, w) tiles of any h, w, without gradients.

    The tiles are reflect-padded at the bottom and right to a multiple of the model's
    ``downscale`` (1 when it has none), run in float32 or, with ``dtype=torch.bfloat16``,
    through CPU autocast, and cropped back. The model's ``forward`` maps (n, 1, H, W) to the
    same shape (a ``CyclePair`` runs its experiment-to-clean generator).

    Returns
    -------
    ndarray (n, h, w), float32
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
    factor = int(getattr(model, "downscale", 1))
    _, h, w = tiles.shape
    pad_h, pad_w = (-h) % factor, (-w) % factor
    x = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32))[:, None]
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        y = model(x)
    return y[:, 0, :h, :w].float().numpy()
