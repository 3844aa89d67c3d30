"""``atomlens simulate stem|hrtem|series|dataset``: images of crystals with their ground truth."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atomlens import __version__
from atomlens.cli._common import (
    aberrations_from,
    add_aberration_arguments,
    check_outputs,
    prepare_folder,
)

if TYPE_CHECKING:
    from atomlens.io._atomic import AtomicOutputs
    from atomlens.physics.imaging.images import SimulatedImage
    from atomlens.physics.imaging.series import SimulatedSeries

IMAGE_OUTPUTS = ["image.tif", "clean.tif", "atoms.csv", "parameters.json"]
SERIES_OUTPUTS = ["series.tif", "clean.tif", "tracks.csv", "events.csv", "parameters.json"]


def add_parsers(kinds: argparse._SubParsersAction) -> None:
    """Register ``stem``, ``hrtem``, ``series`` and ``dataset`` under ``atomlens simulate``."""
    for modality in ("stem", "hrtem"):
        parser = kinds.add_parser(
            modality,
            help=f"simulate a {modality.upper()} image of a crystal with its atom table",
            description=(
                f"Simulate a {modality.upper()} image of a crystal seen along a zone axis. Writes "
                "image.tif (recorded), clean.tif (noise-free), atoms.csv (the projected columns: "
                "y, x in px, y_A, x_A in Å, Z, species, count) and parameters.json into -o DIR."
            ),
            epilog=(
                f"example: atomlens simulate {modality} --structure SrTiO3 --zone-axis 001 "
                "--size 256 --pixel-size 0.2 --dose 5000 --distortions realistic --seed 0 -o out"
            ),
        )
        _structure_arguments(parser)
        _imaging_arguments(parser, modality)
        _noise_arguments(parser)
        _output_arguments(parser)
        parser.add_argument("--plot", action="store_true", help="also write preview.png")
        parser.set_defaults(run=run_image, modality=modality)
    _add_series_parser(kinds)
    _add_dataset_parser(kinds)


def _structure_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("structure")
    group.add_argument("--structure", default="SrTiO3", help="material name or CIF file (SrTiO3)")
    group.add_argument("--zone-axis", default="001", help="e.g. 001, 110, 1,1,-2 (001)")
    group.add_argument("--size", type=int, default=256, help="image size [px] (256)")
    group.add_argument("--pixel-size", type=float, default=0.2, help="[Å] (0.2)")
    group.add_argument(
        "--thickness", type=float, default=40.0, help="[Å], rounded to whole repeats (40)"
    )
    group.add_argument("--rotation", default="0", help="in-plane rotation [deg] or 'random' (0)")
    group.add_argument("--vacancies", type=float, default=0.0, help="fraction of atoms removed")
    group.add_argument("--adatoms", type=int, default=0, help="adatoms of the first element")
    group.add_argument(
        "--random-structure", action="store_true", help="draw material, zone and defects at random"
    )


def _imaging_arguments(parser: argparse.ArgumentParser, modality: str) -> None:
    group = parser.add_argument_group("microscope")
    energy = 200e3 if modality == "stem" else 300e3
    group.add_argument("--energy", type=float, default=energy, help=f"[eV] ({energy:.0f})")
    if modality == "stem":
        group.add_argument("--semiangle", type=float, default=25.0, help="[mrad] (25)")
        group.add_argument("--mode", choices=["HAADF", "ABF", "BF"], default="HAADF")
        group.add_argument("--source-size", type=float, default=0.3, help="sigma [Å] (0.3)")
    else:
        group.add_argument("--objective-aperture", type=float, default=40.0, help="[mrad] (40)")
        group.add_argument("--focal-spread", type=float, default=30.0, help="sigma [Å] (30)")
        group.add_argument("--divergence", type=float, default=0.2, help="sigma [mrad] (0.2)")
        group.add_argument("--slice-thickness", type=float, default=2.0, help="[Å] (2)")
    add_aberration_arguments(parser, "aberrations (default: a corrected microscope)")


def _noise_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("detector")
    group.add_argument("--dose", type=float, default=None, help="mean electrons per pixel")
    group.add_argument(
        "--distortions",
        choices=["none", "realistic"],
        default="none",
        help="'realistic' samples every detector and scan distortion of the modality (none)",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--seed", type=int, default=0, help="random seed (0)")
    group.add_argument("-o", "--output", required=True, help="output folder")
    group.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def parse_zone_axis(text: str) -> tuple[int, ...]:
    """'001' -> (0, 0, 1); '1,1,-2' -> (1, 1, -2); also 4-index '2,-1,-1,0'."""
    try:
        if "," in text or " " in text:
            values = tuple(int(v) for v in text.replace(",", " ").split())
        else:
            values = tuple(int(c) for c in text)
    except ValueError:
        raise ValueError(f"--zone-axis {text!r}: give digits like 001 or 1,1,-2.") from None
    if len(values) not in (3, 4) or not any(values):
        raise ValueError(f"--zone-axis {text!r}: need 3 (or 4) indices, not all zero.")
    return values


def build_field(args: argparse.Namespace, rng: np.random.Generator):
    """The field (ase.Atoms box) and a record of how it was built."""
    from atomlens.physics.structures import defects
    from atomlens.physics.structures.lattice import field
    from atomlens.physics.structures.random_structures import random_structure

    shape = (args.size, args.size)
    if args.random_structure:
        return random_structure(shape, args.pixel_size, rng)
    rotation = "random" if args.rotation == "random" else float(args.rotation)
    zone = parse_zone_axis(args.zone_axis)
    atoms = field(
        args.structure,
        shape,
        args.pixel_size,
        zone_axis=zone,
        thickness=args.thickness,
        rotation=rotation,
        rng=rng,
    )
    record = {
        "material": args.structure,
        "zone_axis": list(zone),
        "rotation": args.rotation,
        "thickness_A": float(atoms.cell[2, 2]),
    }
    if args.vacancies:
        atoms, removed = defects.vacancies(atoms, fraction=args.vacancies, rng=rng)
        record["vacancies"] = len(removed)
    if args.adatoms:
        element = atoms.get_chemical_symbols()[0]
        atoms, added = defects.adatoms(atoms, element, args.adatoms, rng=rng)
        record["adatoms"] = {"element": element, "count": len(added)}
    return atoms, record


def build_imaging(args: argparse.Namespace):
    """STEMImaging or HRTEMImaging from the options."""
    from atomlens.physics.imaging.hrtem import HRTEMImaging
    from atomlens.physics.imaging.stem import STEMImaging

    aberrations = aberrations_from(args)
    if args.modality == "stem":
        imaging = STEMImaging(
            energy=args.energy,
            semiangle=args.semiangle,
            mode=args.mode,
            source_size=args.source_size,
        )
    else:
        imaging = HRTEMImaging(
            energy=args.energy,
            objective_aperture=args.objective_aperture,
            focal_spread=args.focal_spread,
            divergence=args.divergence,
            slice_thickness=args.slice_thickness,
        )
    return imaging if aberrations is None else replace(imaging, aberrations=aberrations)


def _distortion_chain(args: argparse.Namespace, modality: str, rng: np.random.Generator):
    from atomlens.physics.detectors import realistic_stem, realistic_tem

    if args.distortions != "realistic":
        return None
    preset = realistic_stem if modality == "stem" else realistic_tem
    if args.dose is None:
        return preset(rng)
    return preset(rng, dose_per_pixel_range=(args.dose, args.dose))


def run_image(args: argparse.Namespace) -> int:
    from atomlens.io import atomic_outputs
    from atomlens.physics.imaging.images import simulate_image

    names = IMAGE_OUTPUTS + ["preview.png"] * args.plot
    folder = prepare_folder(args.output, names, args.overwrite, create=False)
    rng = np.random.default_rng(args.seed)
    atoms, structure = build_field(args, rng)
    imaging = build_imaging(args)
    chain = _distortion_chain(args, args.modality, rng)
    result = simulate_image(
        atoms, args.pixel_size, imaging, dose_per_pixel=args.dose, distortions=chain, rng=rng
    )
    parameters = {
        "atomlens_version": __version__,
        "command": f"simulate {args.modality}",
        "seed": args.seed,
        "size_px": args.size,
        "structure": structure,
        **result.metadata,
    }
    with atomic_outputs(
        [folder / n for n in names], overwrite=args.overwrite, create_folders=True
    ) as out:
        _write_image_outputs(out, folder, result, parameters, args.pixel_size)
        if args.plot:
            from atomlens.report.figures import save_overlay

            save_overlay(
                out.path(folder / "preview.png"),
                result.image,
                result.atoms,
                args.pixel_size,
                title=f"{args.modality.upper()} {structure.get('material', '')}",
                overwrite=False,
            )
    print(f"wrote {folder}: {', '.join(IMAGE_OUTPUTS)} ({len(result.atoms)} columns)")
    return 0


def _write_image_outputs(
    out: AtomicOutputs, folder: Path, result: SimulatedImage, parameters: dict, pixel_size: float
) -> None:
    """image.tif, clean.tif, atoms.csv and parameters.json, to the temporary files of ``out``."""
    from atomlens.io import write_csv, write_json, write_tiff

    write_tiff(out.path(folder / "image.tif"), result.image, pixel_size=pixel_size)
    write_tiff(out.path(folder / "clean.tif"), result.clean, pixel_size=pixel_size)
    write_csv(out.path(folder / "atoms.csv"), result.atoms)
    write_json(out.path(folder / "parameters.json"), parameters)


def _add_series_parser(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "series",
        help="simulate an image series of moving atoms with tracks and events",
        description=(
            "Simulate a STEM image series of a crystal whose atoms jitter, hop, diffuse, appear "
            "and leave, with sample drift. Writes series.tif (T, H, W), clean.tif, tracks.csv "
            "(frame, particle, y, x in px, ...), events.csv and parameters.json into -o DIR."
        ),
        epilog="example: atomlens simulate series --structure graphene --size 128 "
        "--pixel-size 0.15 --frames 50 --adatoms 10 --distortions realistic -o series",
    )
    _structure_arguments(parser)
    parser.set_defaults(structure="graphene", size=128, pixel_size=0.15)
    _imaging_arguments(parser, "stem")
    _noise_arguments(parser)
    group = parser.add_argument_group("dynamics (rates per frame)")
    group.add_argument("--frames", type=int, default=50, help="number of frames (50)")
    group.add_argument("--thermal-sigma", type=float, default=0.05, help="jitter [Å] (0.05)")
    group.add_argument("--hop-rate", type=float, default=0.002, help="per atom (0.002)")
    group.add_argument("--vacancy-migration", type=float, default=0.05, help="per vacancy (0.05)")
    group.add_argument("--adatom-diffusion", type=float, default=0.5, help="D [Å^2/frame] (0.5)")
    group.add_argument("--appear-rate", type=float, default=0.1, help="adatoms per frame (0.1)")
    group.add_argument("--leave-rate", type=float, default=0.01, help="per adatom (0.01)")
    group.add_argument("--merge-distance", type=float, default=2.0, help="[Å] (2)")
    group.add_argument(
        "--drift",
        type=float,
        nargs=2,
        default=(0.02, 0.03),
        metavar=("VY", "VX"),
        help="sample drift [Å/frame] (0.02 0.03)",
    )
    _output_arguments(parser)
    parser.set_defaults(run=run_series, modality="stem")


def run_series(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from atomlens.io import atomic_outputs
    from atomlens.physics.detectors import realistic_stem
    from atomlens.physics.dynamics.models import DynamicsModel, simulate_series
    from atomlens.physics.imaging.series import simulate_image_series

    if args.frames < 1:
        raise ValueError(f"--frames must be at least 1, got {args.frames}.")
    folder = prepare_folder(args.output, SERIES_OUTPUTS, args.overwrite, create=False)
    rng = np.random.default_rng(args.seed)
    atoms, structure = build_field(args, rng)
    model = DynamicsModel(
        thermal_sigma=args.thermal_sigma,
        hop_rate=args.hop_rate,
        vacancy_migration=args.vacancy_migration,
        adatom_diffusion=args.adatom_diffusion,
        appear_rate=args.appear_rate,
        leave_rate=args.leave_rate,
        merge_distance=args.merge_distance,
        drift=tuple(args.drift),
    )
    series = simulate_series(atoms, args.frames, model, rng)
    chain = None
    if args.distortions == "realistic":
        dose = None if args.dose is None else (args.dose, args.dose)

        def chain(generator):
            return (
                realistic_stem(generator)
                if dose is None
                else realistic_stem(generator, dose_per_pixel_range=dose)
            )

    result = simulate_image_series(
        series,
        args.pixel_size,
        build_imaging(args),
        distortions=chain,
        dose_per_pixel=args.dose,
        rng=rng,
    )
    parameters = {
        "atomlens_version": __version__,
        "command": "simulate series",
        "seed": args.seed,
        "structure": structure,
        "dynamics": asdict(model),
        **result.metadata,
    }
    outputs = [folder / n for n in SERIES_OUTPUTS]
    with atomic_outputs(outputs, overwrite=args.overwrite, create_folders=True) as out:
        _write_series_outputs(out, folder, result, parameters, args.pixel_size)
    counts = result.events["kind"].value_counts().to_dict()
    print(
        f"wrote {folder}: {args.frames} frames, {result.tracks['particle'].nunique()} "
        f"particles, events {counts}"
    )
    return 0


def _write_series_outputs(
    out: AtomicOutputs, folder: Path, result: SimulatedSeries, parameters: dict, pixel_size: float
) -> None:
    """series.tif, clean.tif, tracks.csv, events.csv and parameters.json, to the temporary files
    of ``out``."""
    from atomlens.io import write_csv, write_json, write_tiff

    write_tiff(out.path(folder / "series.tif"), result.frames, pixel_size=pixel_size)
    write_tiff(out.path(folder / "clean.tif"), result.clean, pixel_size=pixel_size)
    write_csv(out.path(folder / "tracks.csv"), result.tracks)
    write_csv(out.path(folder / "events.csv"), result.events)
    write_json(out.path(folder / "parameters.json"), parameters)


def _add_dataset_parser(kinds: argparse._SubParsersAction) -> None:
    parser = kinds.add_parser(
        "dataset",
        help="write a fixed held-out dataset (HDF5) for benchmarks",
        description=(
            "Write a fixed held-out set of random simulated samples to HDF5 so that every "
            "benchmark uses the same data: restoration and segmentation (images, clean images, "
            "atom tables) or tracking (series, tracks, events). Its default seed is never used "
            "for training."
        ),
    )
    parser.add_argument(
        "--task", choices=["restoration", "segmentation", "tracking"], required=True
    )
    parser.add_argument("--modality", choices=["stem", "hrtem", "mixed"], default="stem")
    parser.add_argument("--count", type=int, required=True, help="number of samples")
    parser.add_argument("--size", type=int, default=128, help="image size [px] (128)")
    parser.add_argument("--frames", type=int, default=20, help="frames per series (20)")
    parser.add_argument("--distortions", choices=["realistic", "shot", "none"], default="realistic")
    parser.add_argument("--seed", type=int, default=1_000_000, help="(1000000)")
    parser.add_argument("-o", "--output", required=True, help="output .h5 file")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run_dataset)


def run_dataset(args: argparse.Namespace) -> int:
    from atomlens.data import ImageSampler, SeriesSampler, write_heldout

    output = Path(args.output)
    if output.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"A dataset is written as HDF5: give -o NAME.h5, not {output.name}.")
    check_outputs([output], args.overwrite, files=True)
    if args.task == "tracking":
        sampler = SeriesSampler(frames=args.frames, size=args.size, distortions=args.distortions)
    else:
        sampler = ImageSampler(modality=args.modality, size=args.size, distortions=args.distortions)
    write_heldout(
        output,
        args.task,
        args.count,
        sampler=sampler,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(f"wrote {output}: {args.count} {args.task} samples ({sampler.describe()})")
    return 0
