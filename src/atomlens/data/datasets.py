"""torch Datasets that simulate training samples on the fly, and a fixed held-out set on disk.

Each item is drawn from ``numpy.random.default_rng([seed, index])`` by a sampler
(``samplers.ImageSampler`` / ``SeriesSampler``): no state is shared between items, so the datasets
are safe with any number of DataLoader workers and item i is identical in every epoch.

Images are standardised per item (zero mean, unit standard deviation): the network input from the
recorded image, the restoration target from the clean image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from atomlens.core.validation import check_parameter, check_size
from atomlens.data.samplers import ImageSampler, SeriesSampler
from atomlens.physics.imaging.labels import class_masks, distance_map

TASKS = ("restoration", "segmentation", "tracking")


def standardise(image: np.ndarray) -> np.ndarray:
    """(image - mean) / std, float32; a flat image becomes zeros."""
    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    return (image - image.mean()) / (std if std > 0 else 1.0)


class _Synthetic(Dataset):
    def __init__(self, sampler, length: int, seed: int):
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}.")
        self.sampler, self.length, self.seed = sampler, int(length), int(seed)

    def __len__(self) -> int:
        return self.length

    def _check(self, index: int) -> int:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items.")
        return index % self.length

    def sample(self, index: int):
        """The full simulated record of item ``index`` (images, atom table, metadata)."""
        return self.sampler.sample(self._check(index), self.seed)


class RestorationDataset(_Synthetic):
    """(distorted image, clean image) pairs, each a (1, H, W) float32 tensor, standardised.

    Parameters
    ----------
    sampler : ImageSampler
    length : int
        Items per epoch.
    seed : int
    """

    def __init__(self, sampler: ImageSampler | None = None, length: int = 1000, seed: int = 0):
        super().__init__(sampler or ImageSampler(), length, seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.sample(index)
        return (
            torch.from_numpy(standardise(item.image))[None],
            torch.from_numpy(standardise(item.clean))[None],
        )


class SegmentationDataset(_Synthetic):
    """(image, label maps) pairs for atom-column segmentation.

    Parameters
    ----------
    sampler : ImageSampler
    length : int
    seed : int
    classes : sequence of str or None
        Column species to give a map each (e.g. ``["Sr", "Ti-O", "O"]``); None gives one map,
        "column", for every column.
    kind : {"gaussian", "disk"}
        Mask shape; Gaussians of standard deviation ``sigma`` [px] or disks of ``radius`` [px].
    sigma, radius : float
        [px].

    Returns (per item)
    ------------------
    image : Tensor (1, H, W), standardised
    masks : Tensor (C, H, W) in [0, 1]
    distance : Tensor (1, H, W), distance to the nearest column [px]
    """

    def __init__(
        self,
        sampler: ImageSampler | None = None,
        length: int = 1000,
        seed: int = 0,
        *,
        classes: list[str] | None = None,
        kind: str = "gaussian",
        sigma: float = 1.5,
        radius: float = 2.5,
    ):
        super().__init__(sampler or ImageSampler(), length, seed)
        self.classes, self.kind, self.sigma, self.radius = classes, kind, sigma, radius

    def labels(self, table: pd.DataFrame, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Masks (C, H, W) and distance map (H, W) of an atom table."""
        if self.classes is None:
            table = table.assign(label="column")
            masks, _ = class_masks(
                table,
                shape,
                ["column"],
                kind=self.kind,
                sigma=self.sigma,
                radius=self.radius,
                column="label",
            )
        else:
            masks, _ = class_masks(
                table, shape, self.classes, kind=self.kind, sigma=self.sigma, radius=self.radius
            )
        return masks, distance_map(table, shape)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        item = self.sample(index)
        masks, distance = self.labels(item.atoms, item.image.shape)
        return (
            torch.from_numpy(standardise(item.image))[None],
            torch.from_numpy(masks),
            torch.from_numpy(distance)[None],
        )


class TrackingDataset(_Synthetic):
    """(series, tracks) pairs: frames (T, 1, H, W) standardised per frame, and a float tensor
    (N, 4) of ``frame, particle, y, x`` [px] for the atoms in view.

    Item sizes differ, so use ``batch_size=1`` or a collate function that keeps lists.
    """

    def __init__(self, sampler: SeriesSampler | None = None, length: int = 100, seed: int = 0):
        super().__init__(sampler or SeriesSampler(), length, seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.sample(index)
        frames = np.stack([standardise(frame) for frame in item.frames])[:, None]
        tracks = item.tracks[item.tracks["in_view"]][["frame", "particle", "y", "x"]]
        return torch.from_numpy(frames), torch.from_numpy(tracks.to_numpy(np.float32))


def write_heldout(
    path: str | Path,
    task: str,
    count: int,
    *,
    sampler: ImageSampler | SeriesSampler | None = None,
    seed: int = 1_000_000,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a fixed held-out set to HDF5, so that every benchmark uses the same data.

    Parameters
    ----------
    path : str or Path
        Output ``.h5`` file (written atomically; an existing file is kept unless ``overwrite``).
    task : {"restoration", "segmentation", "tracking"}
    count : int
        Number of items.
    sampler : ImageSampler or SeriesSampler, optional
        Default: ``ImageSampler()`` (``SeriesSampler()`` for tracking).
    seed : int
        Keep it apart from training seeds; the default 1 000 000 is never used for training by the
        atomlens training commands.

    Returns
    -------
    Path

    Notes
    -----
    Layout: ``image`` (N, H, W) recorded and ``clean`` (N, H, W) for single images, or ``frames`` /
    ``clean`` (N, T, H, W) for series; tables ``atoms`` (columns per image, with a ``sample``
    column), ``tracks`` and ``events`` (series) as compound datasets; ``pixel_size_A`` (N,); the
    sampler and seed in the file attributes; each item's metadata as JSON in ``metadata``.
    """
    import json

    import h5py

    from atomlens.io import atomic_write
    from atomlens.io._write import to_jsonable

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    count = check_parameter("count", count)
    if sampler is None:
        sampler = SeriesSampler() if task == "tracking" else ImageSampler()
    _check_heldout_size(sampler, count)
    items = [
        sampler.sample(i, seed)
        for i in tqdm(range(count), desc=f"held-out {task}", disable=not progress)
    ]

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["task"] = task
            handle.attrs["seed"] = seed
            handle.attrs["sampler"] = json.dumps(sampler.describe())
            handle.attrs["units"] = "positions in px (pixel centres at integers), *_A in Å"
            series = task == "tracking"
            first, second = ("frames", "clean") if series else ("image", "clean")
            handle.create_dataset(
                first,
                data=np.stack([getattr(it, first) for it in items]),
                compression="gzip",
                compression_opts=1,
            )
            handle.create_dataset(
                second,
                data=np.stack([it.clean for it in items]),
                compression="gzip",
                compression_opts=1,
            )
            handle.create_dataset("pixel_size_A", data=[it.pixel_size for it in items])
            tables = ("tracks", "events") if series else ("atoms",)
            for name in tables:
                frames = [getattr(it, name).assign(sample=i) for i, it in enumerate(items)]
                _write_table(handle, name, pd.concat(frames, ignore_index=True))
            metadata = [json.dumps(to_jsonable(it.metadata)) for it in items]
            handle.create_dataset(
                "metadata", data=np.array(metadata, dtype=object), dtype=h5py.string_dtype()
            )

    return atomic_write(path, write, overwrite)


def _check_heldout_size(sampler: object, count: int) -> None:
    """Refuse, before simulating, a held-out set whose images would not fit in memory.

    The items are kept until the file is written: the recorded and the clean stack, float32.
    """
    if isinstance(sampler, SeriesSampler):
        shape = (2 * count, sampler.frames, sampler.size, sampler.size)
    elif isinstance(sampler, ImageSampler):
        shape = (2 * count, sampler.size, sampler.size)
    else:
        return
    check_size("the held-out images (recorded and clean)", shape)


def _write_table(handle, name: str, table: pd.DataFrame) -> None:
    import h5py

    columns = {}
    for column in table.columns:
        values = table[column]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            columns[column] = values.astype(str).to_numpy(dtype=object)
        else:
            columns[column] = values.to_numpy()
    dtype = [(c, h5py.string_dtype() if v.dtype == object else v.dtype) for c, v in columns.items()]
    data = np.empty(len(table), dtype=dtype)
    for column, values in columns.items():
        data[column] = values
    handle.create_dataset(name, data=data)


def read_table(path: str | Path, name: str) -> pd.DataFrame:
    """Read a table (``atoms``, ``tracks``, ``events``) of a held-out file as a DataFrame."""
    import h5py

    with h5py.File(path, "r") as handle:
        if name not in handle:
            raise KeyError(f"{path} has no table {name!r}; it has {list(handle)}.")
        data = handle[name][()]
    table = pd.DataFrame({column: data[column] for column in data.dtype.names})
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(lambda v: v.decode() if isinstance(v, bytes) else v)
    return table
