import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from atomlens.data import (
    ImageSampler,
    RestorationDataset,
    SegmentationDataset,
    SeriesSampler,
    TrackingDataset,
    read_table,
    write_heldout,
)

SMALL = ImageSampler(size=48)


def test_restoration_pairs_are_standardised_and_reproducible():
    dataset = RestorationDataset(SMALL, length=4, seed=7)
    noisy, clean = dataset[2]
    assert noisy.shape == clean.shape == (1, 48, 48)
    assert float(noisy.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(noisy.std()) == pytest.approx(1.0, rel=0.05)
    again = RestorationDataset(SMALL, length=4, seed=7)[2]
    assert torch.equal(noisy, again[0]) and torch.equal(clean, again[1])
    other = RestorationDataset(SMALL, length=4, seed=8)[2]
    assert not torch.equal(noisy, other[0])


def test_dataloader_workers_give_the_same_items():
    dataset = RestorationDataset(SMALL, length=4, seed=1)
    direct = torch.stack([dataset[i][0] for i in range(4)])
    loaded = torch.cat([batch[0] for batch in DataLoader(dataset, batch_size=2, num_workers=2)])
    assert torch.equal(direct, loaded)


def test_segmentation_masks_mark_the_columns():
    dataset = SegmentationDataset(SMALL, length=2, seed=3, sigma=1.0)
    image, masks, distance = dataset[0]
    assert image.shape == (1, 48, 48)
    table = dataset.sample(0).atoms
    assert masks.shape == (1, 48, 48) and distance.shape == (1, 48, 48)
    inside = table[
        (table["y"] > 0.5) & (table["y"] < 46.5) & (table["x"] > 0.5) & (table["x"] < 46.5)
    ]
    rows = np.round(inside["y"].to_numpy()).astype(int)
    cols = np.round(inside["x"].to_numpy()).astype(int)
    assert float(masks[0, rows, cols].min()) > np.exp(-0.5 / 1.0) - 1e-4  # within 0.71 px of peak
    assert float(distance.min()) < 0.71


def test_index_out_of_range_and_bad_parameters():
    with pytest.raises(IndexError, match="out of range"):
        RestorationDataset(SMALL, length=2)[2]
    with pytest.raises(ValueError, match="modality"):
        ImageSampler(modality="sem")
    with pytest.raises(ValueError, match="length"):
        RestorationDataset(SMALL, length=0)


def test_tracking_items_and_heldout_round_trip(tmp_path):
    sampler = SeriesSampler(frames=3, size=48)
    frames, tracks = TrackingDataset(sampler, length=1, seed=2)[0]
    assert frames.shape == (3, 1, 48, 48)
    assert tracks.shape[1] == 4 and set(tracks[:, 0].unique().tolist()) == {0.0, 1.0, 2.0}
    path = write_heldout(
        tmp_path / "series.h5", "tracking", 2, sampler=sampler, seed=5, progress=False
    )
    written = read_table(path, "tracks")
    expected = sampler.sample(1, 5).tracks
    assert (written["sample"] == 1).sum() == len(expected)
    assert np.allclose(written[written["sample"] == 1]["y"].to_numpy(), expected["y"].to_numpy())
    with pytest.raises(FileExistsError):
        write_heldout(path, "tracking", 1, sampler=sampler, progress=False)


def test_heldout_images_match_the_sampler(tmp_path):
    import h5py

    path = write_heldout(
        tmp_path / "seg.h5", "segmentation", 2, sampler=SMALL, seed=9, progress=False
    )
    with h5py.File(path) as handle:
        images = handle["image"][:]
        assert handle.attrs["seed"] == 9
    assert np.array_equal(images[1], SMALL.sample(1, 9).image)
    atoms = read_table(path, "atoms")
    assert set(atoms["sample"]) == {0, 1} and {"y", "x", "species"} <= set(atoms.columns)
