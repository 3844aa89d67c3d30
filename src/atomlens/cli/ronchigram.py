"""``atomlens simulate ronchigram``: Ronchigrams and Ronchigram datasets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from atomlens.cli._common import aberrations_from, add_aberration_arguments, check_outputs
from atomlens.core.validation import check_free_space, check_parameter
from atomlens.physics.detectors import Compose, ronchigram_camera
from atomlens.physics.optics.aberrations import NAMES, Aberrations, random_aberrations

if TYPE_CHECKING:  # the simulator and specimens import torch: imported where they run, so
    # that every other command starts without it (about 1.5 s)
    from atomlens.physics.imaging.ronchigram import RonchigramSetup
    from atomlens.physics.potentials.specimens import Specimen

CRYSTALS = {
    # name: (ase.build.bulk arguments) for a [001]-oriented cubic cell
    "Si": ("Si", "diamond", 5.431),
    "Au": ("Au", "fcc", 4.078),
    "Pt": ("Pt", "fcc", 3.924),
    "GaAs": ("GaAs", "zincblende", 5.653),
}


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register ``atomlens simulate ronchigram``."""
    parser = kinds.add_parser(
        "ronchigram",
        help="simulate one Ronchigram (TIFF + JSON sidecar) or a labelled dataset (HDF5)",
        description=(
            "Simulate Ronchigrams: a probe with the given aberrations through a specimen, "
            "recorded on a detector. One image goes to a TIFF with a JSON sidecar of every "
            "parameter; --count N draws N aberration sets within --range bounds and writes an "
            "HDF5 dataset with the labels."
        ),
        epilog=(
            "example: atomlens simulate ronchigram --energy 200e3 --semiangle 30 "
            "--angular-sampling 0.5 --size 256 --C10 -200 --C12 100 --phi12 0.5 "
            "--specimen amorphous --thickness 100 --dose 1e7 --seed 0 -o ronchigram.tif"
        ),
    )
    optics = parser.add_argument_group("optics and detector geometry")
    optics.add_argument("--energy", type=float, default=200e3, help="beam energy [eV] (200e3)")
    optics.add_argument(
        "--semiangle", type=float, default=30.0, help="convergence semi-angle [mrad] (30)"
    )
    optics.add_argument(
        "--angular-sampling", type=float, default=0.5, help="detector pixel [mrad / px] (0.5)"
    )
    optics.add_argument("--size", type=int, default=256, help="detector size [px] (256)")
    optics.add_argument(
        "--edge-width", type=float, default=None, help="soft aperture edge [mrad] (1 px)"
    )
    optics.add_argument(
        "--source-size", type=float, default=0.0, help="Gaussian source sigma [Å] (0)"
    )
    optics.add_argument(
        "--tilt",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("TY", "TX"),
        help="beam tilt [mrad]",
    )
    optics.add_argument("--oversampling", default="auto", help="odd field enlargement or 'auto'")

    add_aberration_arguments(parser, "probe aberrations")

    specimen = parser.add_argument_group("specimen")
    specimen.add_argument(
        "--specimen",
        choices=["amorphous", "phase-grating", "crystal"],
        default="amorphous",
        help="amorphous film, white-noise phase grating or thin crystal (amorphous)",
    )
    specimen.add_argument(
        "--thickness", type=float, default=100.0, help="amorphous thickness [Å] (100)"
    )
    specimen.add_argument("--element", default="C", help="amorphous element (C)")
    specimen.add_argument("--density", type=float, help="[atoms / Å^3] (amorphous carbon's, 0.100)")
    specimen.add_argument(
        "--slice-thickness", type=float, default=20.0, help="multislice step [Å] (20)"
    )
    specimen.add_argument(
        "--phase-std", type=float, default=0.5, help="phase grating sigma [rad] (0.5)"
    )
    specimen.add_argument(
        "--correlation-length", type=float, default=0.0, help="phase grating correlation [Å] (0)"
    )
    specimen.add_argument(
        "--crystal", choices=sorted(CRYSTALS), default="Si", help="[001] crystal (Si)"
    )
    specimen.add_argument(
        "--unit-cells", type=int, default=2, help="crystal cells along the beam (2)"
    )

    detector = parser.add_argument_group("detector")
    detector.add_argument(
        "--dose",
        type=float,
        default=None,
        help="electrons per image; omit for noise-free intensity",
    )
    detector.add_argument("--gain", type=float, default=1.0, help="[counts / e-] (1)")
    detector.add_argument("--psf-sigma", type=float, default=0.0, help="camera PSF sigma [px] (0)")
    detector.add_argument("--dark-offset", type=float, default=0.0, help="[counts] (0)")
    detector.add_argument("--readout-noise", type=float, default=0.0, help="sigma [counts] (0)")

    dataset = parser.add_argument_group("datasets")
    dataset.add_argument(
        "--count", type=int, default=None, help="number of Ronchigrams (HDF5 output)"
    )
    dataset.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH",
        help="uniform range of a coefficient [Å or rad], repeatable: --range C10=-500:500",
    )
    dataset.add_argument(
        "--tilt-std", type=float, default=0.0, help="random beam tilt sigma [mrad] (0)"
    )
    dataset.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="Ronchigrams computed together (32, as benchmarks/ronchigram_throughput.py)",
    )

    output = parser.add_argument_group("output")
    output.add_argument("--seed", type=int, default=0, help="random seed (0)")
    output.add_argument(
        "-o", "--output", required=True, help="output .tif (one image) or .h5 (--count)"
    )
    output.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    output.add_argument("--device", default=None, help="torch device, e.g. cuda (cpu)")
    output.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def _setup(args: argparse.Namespace) -> RonchigramSetup:
    from atomlens.physics.imaging.ronchigram import RonchigramSetup

    return RonchigramSetup(
        energy=args.energy,
        semiangle=args.semiangle,
        angular_sampling=args.angular_sampling,
        size=args.size,
        edge_width=args.edge_width,
        source_size=args.source_size,
    )


def build_specimen(args: argparse.Namespace) -> Specimen:
    """The specimen described by the command-line options."""
    from atomlens.physics.potentials.specimens import (
        AMORPHOUS_CARBON_DENSITY,
        AmorphousSpecimen,
        CrystalSpecimen,
        PhaseGrating,
    )

    if args.specimen == "amorphous":
        return AmorphousSpecimen(
            thickness=args.thickness,
            density=AMORPHOUS_CARBON_DENSITY if args.density is None else args.density,
            element=args.element,
            slice_thickness=args.slice_thickness,
        )
    if args.specimen == "phase-grating":
        return PhaseGrating(phase_std=args.phase_std, correlation_length=args.correlation_length)
    from ase.build import bulk

    symbol, structure, lattice = CRYSTALS[args.crystal]
    cell = bulk(symbol, structure, a=lattice, cubic=True)
    return CrystalSpecimen(
        atoms=cell, repeats_z=args.unit_cells, slice_thickness=args.slice_thickness
    )


def _detector(args: argparse.Namespace) -> Compose | None:
    if args.dose is None and (args.readout_noise or args.dark_offset or args.gain != 1.0):
        raise ValueError(
            "--readout-noise, --dark-offset and --gain act on counts and need --dose "
            "(electrons per image)."
        )
    if args.dose is None and not args.psf_sigma:
        return None
    return ronchigram_camera(
        args.dose,
        gain=args.gain,
        psf_sigma=args.psf_sigma,
        dark_offset=args.dark_offset,
        readout_noise=args.readout_noise,
    )


def _fixed_aberrations(args: argparse.Namespace) -> Aberrations:
    return aberrations_from(args) or Aberrations()


def parse_ranges(items: list[str]) -> dict[str, tuple[float, float]]:
    """Parse ``NAME=LOW:HIGH`` strings into {name: (low, high)}."""
    ranges: dict[str, tuple[float, float]] = {}
    for item in items:
        try:
            name, bounds = item.split("=", 1)
            low, high = (float(v) for v in bounds.split(":"))
        except ValueError:
            raise ValueError(
                f"--range {item!r} must look like NAME=LOW:HIGH, e.g. C10=-500:500."
            ) from None
        ranges[name.strip()] = (low, high)
    return ranges


def _oversampling(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"--oversampling must be an odd integer or 'auto', got {value!r}."
        ) from None


def setup_record(setup: RonchigramSetup) -> dict:
    """The setup of a Ronchigram file (dataset or sidecar), units in the names."""
    edge = setup.edge_width if setup.edge_width is not None else setup.angular_sampling
    return {
        "energy_eV": setup.energy,
        "semiangle_mrad": setup.semiangle,
        "angular_sampling_mrad_per_px": setup.angular_sampling,
        "size_px": list(setup.size),
        "edge_width_mrad": edge,
        "source_size_A": setup.source_size,
    }


def image_units(detector: Compose | None) -> str:
    """What the pixel values of a simulated Ronchigram are."""
    return "intensity normalised to the beam (sum <= 1)" if detector is None else "counts"


def parameters(args: argparse.Namespace, setup: RonchigramSetup) -> dict:
    """The run's other parameters (beyond setup, specimen and detector), units in the names."""
    return {
        "real_space_sampling_A": setup.sampling,
        "wavelength_A": setup.wavelength,
        "optical_axis_px": [n // 2 for n in setup.size],
        "seed": args.seed,
        "oversampling": args.oversampling,
    }


def run(args: argparse.Namespace) -> int:
    setup = _setup(args)
    specimen = build_specimen(args)
    detector = _detector(args)
    output = Path(args.output)
    if args.count is None:
        if args.range:
            raise ValueError(
                "--range needs --count N (a dataset); for one image give values directly."
            )
        return _single(args, setup, specimen, detector, output)
    return _dataset(args, setup, specimen, detector, output)


def _single(args, setup, specimen, detector, output: Path) -> int:
    from atomlens.io import sidecar_path
    from atomlens.physics.imaging.ronchigram import simulate_ronchigrams

    if output.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"One Ronchigram is written as TIFF: give -o NAME.tif, not {output.name}.")
    sidecar = sidecar_path(output)
    check_outputs([output, sidecar], args.overwrite, files=True)
    aberrations = _fixed_aberrations(args)
    image = simulate_ronchigrams(
        setup,
        [aberrations],
        specimen,
        tilts=np.array([args.tilt]),
        detector=detector,
        seed=args.seed,
        oversampling=_oversampling(args.oversampling),
        device=args.device,
    )[0]
    _write_single(args, setup, specimen, detector, aberrations, image, output, sidecar)
    print(f"wrote {output} ({image.shape[0]}x{image.shape[1]} px) and {sidecar}")
    return 0


def _write_single(
    args: argparse.Namespace,
    setup: RonchigramSetup,
    specimen: Specimen,
    detector: Compose | None,
    aberrations: Aberrations,
    image: np.ndarray,
    output: Path,
    sidecar: Path,
) -> None:
    """Write the TIFF and its sidecar, both or neither: if either write fails (or is
    interrupted), an old pair of files is kept as it was."""
    from atomlens.io import atomic_outputs, write_ronchigram_sidecar, write_tiff

    with atomic_outputs([output, sidecar], overwrite=args.overwrite) as outputs:
        write_tiff(
            outputs.path(output),
            image,
            angular_sampling=setup.angular_sampling,
            metadata={"energy_eV": setup.energy},
        )
        write_ronchigram_sidecar(
            outputs.path(sidecar),
            setup=setup_record(setup),
            aberrations=aberrations.to_abtem(),
            tilt=args.tilt,
            specimen=specimen.describe(),
            detector=detector.describe() if detector else None,
            image_units=image_units(detector),
            parameters=parameters(args, setup),
        )


#: Images simulated per library call when writing a dataset (each call sizes the probes once).
DATASET_CHUNK_BYTES = 64 * 2**20


def _dataset(args, setup, specimen, detector, output: Path) -> int:
    from atomlens.io import write_ronchigram_dataset

    check_parameter("count", args.count)
    check_parameter("batch_size", args.batch_size)
    if output.suffix.lower() not in (".h5", ".hdf5"):
        raise ValueError(f"A dataset is written as HDF5: give -o NAME.h5, not {output.name}.")
    check_outputs([output], args.overwrite, files=True)
    check_free_space(output, args.count * 4 * setup.size[0] * setup.size[1], f"{output}")
    ranges = parse_ranges(args.range)
    if not ranges:
        raise ValueError(
            "A dataset needs at least one --range NAME=LOW:HIGH to draw aberrations from."
        )
    rng = np.random.default_rng([args.seed, 2**31])
    aberrations = random_aberrations(args.count, ranges, rng, fixed=_fixed_aberrations(args))
    tilts = np.asarray(args.tilt) + rng.normal(0.0, args.tilt_std, (args.count, 2))
    labels = [a.to_abtem() for a in aberrations]
    record = parameters(args, setup) | {
        "specimen": specimen.describe(),
        "detector": detector.describe() if detector else None,
        "tilt_mrad": list(args.tilt),
        "tilt_std_mrad": args.tilt_std,
        "ranges_A_rad": {name: list(bounds) for name, bounds in ranges.items()},
    }
    per_image = 4 * setup.size[0] * setup.size[1]
    chunk = max(1, DATASET_CHUNK_BYTES // per_image // args.batch_size) * args.batch_size
    bar = tqdm(total=args.count, desc="Ronchigrams", unit="img", disable=args.no_progress)

    def blocks():
        from atomlens.physics.imaging.ronchigram import simulate_ronchigrams

        for start in range(0, args.count, chunk):
            stop = min(start + chunk, args.count)
            yield simulate_ronchigrams(
                setup,
                aberrations[start:stop],
                specimen,
                tilts=tilts[start:stop],
                detector=detector,
                seed=args.seed,
                oversampling=_oversampling(args.oversampling),
                batch_size=args.batch_size,
                device=args.device,
                first_index=start,
                progress=False,
            )
            bar.update(stop - start)

    try:
        write_ronchigram_dataset(
            output,
            blocks(),
            labels,
            setup_record(setup),
            image_units=image_units(detector),
            tilts=tilts,
            parameters=record,
            overwrite=args.overwrite,
        )
    finally:
        bar.close()
    names = sorted({name for label in labels for name in label}, key=NAMES.index)
    print(
        f"wrote {output}: {args.count} Ronchigrams of {setup.size[0]}x{setup.size[1]} px, "
        f"labels {names}"
    )
    return 0
