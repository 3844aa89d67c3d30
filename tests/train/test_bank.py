"""The example bank: atomic chunks, ordered reads, refresh while it grows, clear refusals."""

import numpy as np
import pytest

from atomlens.train import ExampleBank, generate_bank, write_chunk
from atomlens.train.bank import chunk_path


def _chunk(seed, count=4):
    values = np.arange(count, dtype=np.float64) + 100 * seed
    return {"x": values[:, None] * np.ones((1, 3)), "y": values, "prior": np.array(f"p{seed}")}


def test_take_returns_examples_across_chunks_in_the_order_asked(tmp_path):
    generate_bank(tmp_path, _chunk, [0, 1], progress=False)
    bank = ExampleBank(tmp_path)
    assert len(bank) == 8 and bank.chunks == 2
    batch = bank.take(np.array([5, 0, 7]))
    np.testing.assert_array_equal(batch["y"], [101.0, 0.0, 103.0])
    np.testing.assert_array_equal(batch["x"][:, 2], batch["y"])
    assert set(batch) == {"x", "y"}  # chunk-level arrays are not per-example
    assert bank.count_by("prior", default="none") == {"p0": 4, "p1": 4}
    np.testing.assert_array_equal(bank.arrays()["y"], np.r_[np.arange(4), 100 + np.arange(4)])
    with pytest.raises(IndexError):
        bank.take(np.array([8]))


def test_refresh_reads_only_new_chunks_and_generation_resumes(tmp_path):
    write_chunk(tmp_path, 3, _chunk(3, count=2))
    bank = ExampleBank(tmp_path)
    assert len(bank) == 2
    written = generate_bank(tmp_path, _chunk, [3, 4], progress=False)  # 3 exists: skipped
    assert written == [chunk_path(tmp_path, 4)]
    assert bank.refresh() == 1 and len(bank) == 6
    assert bank.refresh() == 0
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_bank_never_overwrites_and_refuses_bad_folders(tmp_path):
    write_chunk(tmp_path, 0, _chunk(0))
    before = chunk_path(tmp_path, 0).read_bytes()
    with pytest.raises(FileExistsError, match="never overwrites"):
        write_chunk(tmp_path, 0, _chunk(9))
    assert chunk_path(tmp_path, 0).read_bytes() == before
    with pytest.raises(FileNotFoundError, match="generate the bank first"):
        ExampleBank(tmp_path / "empty")
    write_chunk(tmp_path, 1, {"x": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="holds arrays"):
        ExampleBank(tmp_path)
    with pytest.raises(ValueError, match="disagree"):
        write_chunk(tmp_path / "b", 0, {"x": np.zeros((2, 3)), "y": np.zeros(3)})
        ExampleBank(tmp_path / "b")
