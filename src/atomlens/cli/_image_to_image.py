"""What the image-to-image commands (``atomlens restore``, ``atomlens enhance``) share: one output
per input, read with the calibration, the verb, written atomically with the calibration kept."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from atomlens.cli._common import check_outputs

OUTPUT_SUFFIXES = (".tif", ".tiff", ".h5", ".hdf5")


def destinations(files: list[str], output: Path, tag: str, verb: str) -> list[Path]:
    """One output file per input: ``output`` itself for one file, ``output/<stem>_<tag>.tif``
    for several."""
    if len(files) == 1 and output.suffix.lower() in OUTPUT_SUFFIXES:
        return [output]
    if len(files) == 1 and not output.is_dir():
        raise ValueError(f"-o {output} must end in {', '.join(OUTPUT_SUFFIXES)} (or be a folder).")
    if output.exists() and not output.is_dir():
        raise ValueError(f"-o {output} is a file; give a folder for several inputs.")
    names = [Path(f).stem + f"_{tag}.tif" for f in files]
    if len(set(names)) != len(names):
        raise ValueError(f"Two inputs have the same name; {verb} them into different folders.")
    return [output / name for name in names]


def transform_files(
    args: argparse.Namespace,
    *,
    verb: str,
    tag: str,
    transform: Callable[[np.ndarray, float | None], np.ndarray],
    provenance: str,
    title: str,
) -> int:
    """Read ``args.files``, apply ``transform(data, pixel_size)`` to each, write ``args.output``
    (and ``args.plot``: input | output panels of the first file), all or nothing.

    The pixel size is ``args.pixel_size`` or the file's; errors of the verb name the file.
    """
    from atomlens.core.validation import InputError
    from atomlens.io import atomic_outputs, read, write_hdf5, write_tiff

    inputs = [Path(f) for f in args.files]
    for path in inputs:
        if not path.exists():
            raise ValueError(f"No such file: {path}")
    targets = destinations(args.files, args.output, tag, verb)
    extra = [args.plot] if args.plot is not None else []
    check_outputs([*targets, *extra], args.overwrite, inputs, files=True)
    results: list[tuple[Any, np.ndarray, float | None]] = []
    for path in inputs:
        image = read(path)
        if image.kind == "diffraction":
            raise ValueError(f"{path} holds a diffraction pattern, not an image to {verb}.")
        pixel_size = args.pixel_size
        if pixel_size is None and image.pixel_size is not None:
            pixel_size = float(sum(image.pixel_size) / 2)
        try:
            results.append((image, transform(np.asarray(image.data), pixel_size), pixel_size))
        except InputError as error:  # name the file, not the keyword
            raise InputError(f"{path}: {error}") from None
    with atomic_outputs([*targets, *extra], overwrite=args.overwrite, create_folders=True) as out:
        for target, (image, result, pixel_size) in zip(targets, results, strict=True):
            metadata: dict[str, Any] = {f"{tag}_by": provenance, "source": str(image.path)}
            if image.energy is not None:
                metadata["energy"] = image.energy
            if target.suffix.lower() in (".h5", ".hdf5"):
                attrs = dict(metadata)
                if pixel_size is not None:
                    attrs["pixel_size"] = pixel_size
                write_hdf5(out.path(target), {"image": result}, attrs=attrs)
            else:
                write_tiff(out.path(target), result, pixel_size=pixel_size, metadata=metadata)
        if args.plot is not None:
            from atomlens.report import save_panels

            image, result, pixel_size = results[0]
            before = np.asarray(image.data, dtype=np.float32)
            if before.ndim == 3:
                before, result = before[0], result[0]
            save_panels(out.path(args.plot), [before, result],
                        [f"input: {inputs[0].name}", title], pixel_size)  # fmt: skip
    for target in targets:
        print(target)
    return 0
