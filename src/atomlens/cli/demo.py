"""``atomlens demo``: the whole chain on built-in example data (simulated, nothing downloaded).

- a gallery of Ronchigrams across C10, C12 and C30 (like Figure 1 of van Hulst et al., paper 004)
  written as a PNG plus the arrays and their labels in HDF5, and one noisy Ronchigram as TIFF with
  its JSON sidecar;
- the aberrations of that Ronchigram estimated by the shipped network (``atomlens.calibrate``),
  printed beside the truth and written as JSON (abTEM keys in Å, with uncertainties);
- a HAADF-STEM image of SrTiO3 [001] with realistic detector and scan distortions, restored by
  the shipped network (``atomlens.restore``) and shown as input / restored / truth (the truth with
  the atom columns overlaid), plus the image, restored image, clean image and atom table;
- a HAADF series of a 2D material with moving atoms (TIFF stack) and ``atomlens run`` on it:
  columns located, the first frame analyzed, atoms tracked, events recognised, and one
  self-contained HTML report in ``run/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atomlens.physics.optics.aberrations import Aberrations

if TYPE_CHECKING:  # the simulator imports torch: only the Ronchigram example needs it
    from atomlens.physics.imaging.ronchigram import RonchigramSetup

#: Gallery axes [nm for C10 and C12, um for C30]; C12 < 0 means phi12 = pi / 2 (A1 along y).
GALLERY_C10_NM = (-40.0, -20.0, 0.0, 20.0, 40.0)
GALLERY_C12_NM = (-20.0, -10.0, 0.0, 10.0, 20.0)
GALLERY_C30_UM = (0.0, 20.0, 50.0, 100.0, 200.0)
GALLERY_C30_C10_NM = -20.0
HAADF_OUTPUTS = (
    "haadf.png",
    "haadf_image.tif",
    "haadf_restored.tif",
    "haadf_clean.tif",
    "haadf_atoms.csv",
    "haadf_columns.csv",
)
#: The demo series (a TIFF stack) and the folder its ``atomlens run`` writes.
SERIES_FILE = "series.tif"
RUN_FOLDER = "run"
#: Frames, frame size [px] and frame time [s] of the demo series.
SERIES_FRAMES, SERIES_SIZE, SERIES_FRAME_TIME = 20, 160, 0.5


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the example chain on built-in simulated data",
        description=(
            "Simulate a gallery of Ronchigrams across C10, C12 and C30 (PNG + HDF5 arrays with "
            "labels) and one noisy Ronchigram (TIFF + JSON), estimate its aberrations and print "
            "them beside the truth, and simulate a distorted HAADF image, restore it and show "
            "input / restored / truth, into one output folder."
        ),
    )
    parser.add_argument("-o", "--output", default="demo_output", help="output folder (demo_output)")
    parser.add_argument("--size", type=int, default=192, help="Ronchigram size [px] (192)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier demo files")
    parser.set_defaults(run=run)


def gallery_aberrations() -> tuple[list[Aberrations], list[str]]:
    """The gallery's aberration sets (row by row) and a short label for each."""
    sets, labels = [], []
    for c12 in GALLERY_C12_NM:
        for c10 in GALLERY_C10_NM:
            phi12 = 0.0 if c12 >= 0 else np.pi / 2
            sets.append(Aberrations(C10=c10 * 10, C12=abs(c12) * 10, phi12=phi12))
            labels.append(f"C10 {c10:+.0f} nm, A1x {c12:+.0f} nm")
    for c30 in GALLERY_C30_UM:
        sets.append(Aberrations(C10=GALLERY_C30_C10_NM * 10, C30=c30 * 1e4))
        labels.append(f"C30 {c30:.0f} um, C10 {GALLERY_C30_C10_NM:+.0f} nm")
    return sets, labels


def plot_gallery(images: np.ndarray, setup: RonchigramSetup, path: Path) -> None:
    """Save the 6 x 5 gallery figure as PNG (atomically)."""
    from matplotlib.figure import Figure

    from atomlens.report.figures import save_figure

    rows, cols = len(GALLERY_C12_NM) + 1, len(GALLERY_C10_NM)
    fig = Figure(figsize=(2.0 * cols, 2.0 * rows + 0.6))
    axes = fig.subplots(rows, cols)
    full = setup.max_angle
    half = min(full, 1.4 * setup.semiangle)  # [mrad] shown around the optical axis
    for index, ax in enumerate(axes.flat):
        ax.imshow(
            images[index], cmap="gray", extent=(-full, full, full, -full), interpolation="nearest"
        )
        ax.set_xlim(-half, half)
        ax.set_ylim(half, -half)
        ax.set_xticks([])
        ax.set_yticks([])
        row, col = divmod(index, cols)
        if row == rows - 1:
            ax.set_xlabel(f"C30 = {GALLERY_C30_UM[col]:.0f} µm")
        elif row == rows - 2:
            ax.set_xlabel(f"C10 = {GALLERY_C10_NM[col]:+.0f} nm")
        if col == 0 and row < rows - 1:
            ax.set_ylabel(f"A1x = {GALLERY_C12_NM[row]:+.0f} nm")
        elif col == 0:
            ax.set_ylabel(f"C10 = {GALLERY_C30_C10_NM:+.0f} nm")
    fig.suptitle(
        f"Simulated Ronchigrams, {setup.energy / 1e3:.0f} kV, {setup.semiangle:.0f} mrad, "
        f"10 nm amorphous C, ±{half:.0f} mrad shown",
        fontsize=11,
    )
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


#: The smallest Ronchigram [px] whose disc (50 px in radius) lies whole on the detector.
DEMO_MIN_SIZE = 112


def run(args: argparse.Namespace) -> int:
    from atomlens.cli._common import prepare_folder
    from atomlens.io import atomic_outputs
    from atomlens.pipeline import output_names

    if args.size < DEMO_MIN_SIZE:
        raise ValueError(
            f"--size must be at least {DEMO_MIN_SIZE} px, got {args.size}: the demo calibrates its "
            "Ronchigram, which needs the whole bright-field disc (30 mrad at 0.6 mrad/px, 50 px "
            "in radius) on the detector."
        )
    folder = Path(args.output)
    names = ["ronchigram_gallery.png", "ronchigram_gallery.h5", "ronchigram.tif"]
    names += ["ronchigram.json", "calibration.json", *HAADF_OUTPUTS, SERIES_FILE]
    prepare_folder(folder, names, args.overwrite, create=False)
    run_names = output_names("series", restored=False)
    prepare_folder(folder / RUN_FOLDER, run_names, args.overwrite, create=False)
    targets = [folder / n for n in names]
    # Every output is written to a temporary file and all are moved into place together, so a
    # failed or interrupted demo leaves the folder as it was.
    with atomic_outputs(targets, overwrite=args.overwrite, create_folders=True) as out:
        ronchigram_examples(args, [out.path(t) for t in targets[:5]])
        haadf_example(out.path(targets[5]).parent, seed=args.seed)
        series_example(out.path(folder / SERIES_FILE), seed=args.seed)
    for path in targets:
        print(f"wrote {path}")
    report = run_example(folder / SERIES_FILE, folder / RUN_FOLDER, overwrite=args.overwrite)
    print(f"the end-to-end run of the series (atomlens run): open {report}")
    return 0


def series_example(path: Path, *, seed: int = 0) -> None:
    """A simulated HAADF series of a 2D material with moving atoms, as a calibrated TIFF stack."""
    from atomlens.data import SeriesSampler
    from atomlens.io import write_tiff

    sampler = SeriesSampler(frames=SERIES_FRAMES, size=SERIES_SIZE, distortions="shot")
    series = sampler.sample(1, seed=seed)
    print(
        f"simulated a {SERIES_FRAMES}-frame HAADF series of {series.metadata['material']} "
        f"({SERIES_SIZE} x {SERIES_SIZE} px, {series.pixel_size:.3f} Å/px)"
    )
    write_tiff(path, series.frames.astype(np.float32), pixel_size=series.pixel_size)


def run_example(series: Path, folder: Path, *, overwrite: bool) -> Path:
    """``atomlens run`` on the demo series: locate, analyze, track; the report's path."""
    from atomlens.pipeline import run, write_run

    result = run(series, "haadf", frame_time=SERIES_FRAME_TIME)
    command = f"atomlens run {series} --frame-time {SERIES_FRAME_TIME} -o {folder}"
    write_run(result, folder, overwrite=overwrite, command=command)
    summary = result.summary()
    print(
        f"{summary['columns']} detections, {summary['trajectories']} trajectories, "
        f"{len(result.events)} events in {sum(result.timings.values()):.1f} s"
    )
    return folder / "report.html"


def ronchigram_examples(args: argparse.Namespace, paths: list[Path]) -> None:
    """The gallery (PNG + HDF5), one noisy Ronchigram (TIFF + sidecar) and its calibration."""
    from atomlens.cli.ronchigram import image_units, setup_record
    from atomlens.io import write_ronchigram_dataset, write_ronchigram_sidecar, write_tiff
    from atomlens.physics.detectors import ronchigram_camera
    from atomlens.physics.imaging.ronchigram import RonchigramSetup, simulate_ronchigrams
    from atomlens.physics.potentials.specimens import AmorphousSpecimen

    gallery_png, gallery_h5, tiff, sidecar, calibration = paths
    setup = RonchigramSetup(energy=200e3, semiangle=30.0, angular_sampling=0.6, size=args.size)
    specimen = AmorphousSpecimen(thickness=100.0)
    sets, labels = gallery_aberrations()
    print(f"simulating {len(sets)} Ronchigrams ({args.size} x {args.size} px) ...")
    images = simulate_ronchigrams(setup, sets, specimen, seed=args.seed, progress=True)
    plot_gallery(images, setup, gallery_png)
    write_ronchigram_dataset(
        gallery_h5,
        images,
        [a.to_abtem() for a in sets],
        setup_record(setup),
        columns=["C10", "C12", "phi12", "C30"],
        image_units=image_units(None),
        captions=labels,
        parameters={"specimen": specimen.describe(), "seed": args.seed},
    )
    example = Aberrations(C10=-200.0, C12=100.0, phi12=0.5, C21=400.0, phi21=1.0, C30=2e4)
    detector = ronchigram_camera(1e7, readout_noise=2.0)
    noisy = simulate_ronchigrams(setup, [example], specimen, detector=detector, seed=args.seed)[0]
    write_tiff(
        tiff,
        noisy,
        angular_sampling=setup.angular_sampling,
        metadata={"energy_eV": setup.energy},
    )
    write_ronchigram_sidecar(
        sidecar,
        setup=setup_record(setup),
        aberrations=example.to_abtem(),
        specimen=specimen.describe(),
        detector=detector.describe(),
        image_units=image_units(detector),
        parameters={"seed": args.seed},
    )
    calibrate_example(tiff, calibration, setup, example)


def calibrate_example(
    image: Path, output: Path, setup: RonchigramSetup, truth: Aberrations
) -> None:
    """Estimate the aberrations of the demo Ronchigram; print them beside the truth."""
    from atomlens.calibrate import estimate
    from atomlens.io import write_json

    result = estimate(image, semiangle=setup.semiangle)  # energy and sampling from the TIFF
    print(result.describe(truth))
    write_json(output, result.to_dict() | {"truth": truth.to_abtem()})


def haadf_example(folder: Path, *, seed: int = 0) -> None:
    """HAADF of SrTiO3 [001] with realistic distortions, restored, beside the truth and atoms."""
    from matplotlib.figure import Figure

    from atomlens.io import write_csv, write_tiff
    from atomlens.locate import locate
    from atomlens.metrics import detection_scores, psnr
    from atomlens.physics import STEMImaging, field, simulate_image
    from atomlens.physics.detectors import realistic_stem
    from atomlens.report.figures import plot_overlay, save_figure
    from atomlens.restore import expected_counts, restore

    pixel_size = 0.15  # [Å]
    rng = np.random.default_rng(seed)
    atoms = field("SrTiO3", (160, 160), pixel_size, thickness=40.0, rotation=8.0)
    result = simulate_image(
        atoms,
        pixel_size,
        STEMImaging(),
        distortions=realistic_stem(rng, dose_per_pixel_range=(200, 200)),
        rng=rng,
    )
    restored = restore(result.image, modality="haadf", pixel_size=pixel_size)
    truth = expected_counts(result.image, result.clean)
    psnr_in, psnr_out = (psnr(x, truth) for x in (result.image, restored))
    print(f"restored the HAADF image: PSNR {psnr_in:.1f} dB -> {psnr_out:.1f} dB against the truth")
    columns = locate(restored, pixel_size=pixel_size, modality="haadf")
    visible = result.atoms[result.atoms["species"] != "O"]  # O columns are too faint in HAADF
    scores = detection_scores(columns[["y", "x"]], visible[["y", "x"]], 0.5 / pixel_size)
    rmse_pm = scores["rmse"] * pixel_size * 100
    print(
        f"located {len(columns)} columns in the restored image: F1 {scores['f1']:.3f} against "
        f"the {len(visible)} Sr and Ti-O columns, position RMSE {rmse_pm:.1f} pm"
    )
    fig = Figure(figsize=(13, 4.8))
    axes = fig.subplots(1, 3)
    titles = (
        f"input: 200 e-/px, scan + detector distortions ({psnr_in:.1f} dB)",
        f"restored ({psnr_out:.1f} dB) and located columns",
        "truth (expected counts, undistorted) and atom columns",
    )
    panels = ((result.image, None), (restored, columns), (truth, result.atoms))
    for ax, (image, columns), title in zip(axes, panels, titles, strict=True):
        plot_overlay(ax, image, columns, pixel_size, title=title)
    fig.suptitle("Simulated SrTiO3 [001], 4 nm thick, 200 kV, 25 mrad", fontsize=11)
    fig.tight_layout()
    save_figure(fig, folder / HAADF_OUTPUTS[0], dpi=100)
    write_tiff(folder / HAADF_OUTPUTS[1], result.image, pixel_size=pixel_size)
    write_tiff(folder / HAADF_OUTPUTS[2], restored, pixel_size=pixel_size)
    write_tiff(folder / HAADF_OUTPUTS[3], result.clean, pixel_size=pixel_size)
    write_csv(folder / HAADF_OUTPUTS[4], result.atoms)
    write_csv(folder / HAADF_OUTPUTS[5], columns)
