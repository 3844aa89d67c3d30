"""``atomlens train locate generate|fit``: the column segmentation networks (U-Net and the
structure-conditioned model of paper 002)."""

from __future__ import annotations

import argparse
from pathlib import Path

KINDS = ("unet", "structure")


def add_locate(tasks: argparse._SubParsersAction) -> None:
    """The ``locate`` task of ``atomlens train``."""
    from atomlens.cli.train import _common, add_fit_arguments

    locate = tasks.add_parser(
        "locate",
        help="the column segmentation networks (U-Net, structure-conditioned)",
        description="Train the segmentation networks of 'atomlens locate --method unet|structure' "
        "on simulated images with realism (the modality and the distortions follow the chunk "
        "seed: HAADF 3 in 5, ABF, HRTEM; detector chain or shot noise).",
    )
    steps = locate.add_subparsers(dest="step", metavar="STEP", required=True)

    generate = steps.add_parser("generate", help="simulate bank chunks of labelled crops")
    generate.add_argument("--bank", type=Path, required=True, help="bank folder")
    generate.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    generate.add_argument("--chunks", type=int, default=100, help="number of chunks")
    generate.add_argument("--images", type=int, default=32, help="images per chunk")
    generate.add_argument("--size", type=int, default=128, help="image size [px]")
    generate.add_argument(
        "--pixel-size-range", default="0.05,0.6", help="low,high pixel size [Å] (default 0.05,0.6)"
    )
    _common(generate)
    generate.set_defaults(run=_generate)

    fit = steps.add_parser("fit", help="train on a bank (validation data in BANK/validation)")
    add_fit_arguments(fit, batch=32, lr=2e-3, ema=0.998, every=(500, 200, 500))
    fit.add_argument("--network", choices=KINDS, default="unet", help="which network")
    fit.add_argument(
        "--contrastive", type=float, default=0.1, help="weight of the contrastive term (structure)"
    )
    _common(fit)
    fit.set_defaults(run=_fit)


def _generate(args: argparse.Namespace) -> int:
    from atomlens.cli.train import run_generate
    from atomlens.cli.train_restore import _range
    from atomlens.core.validation import check_parameter
    from atomlens.locate.training import make_chunk

    pixel_size = _range("--pixel-size-range", args.pixel_size_range, "Å")
    for value in pixel_size:
        check_parameter("pixel_size", value)

    def chunk(seed: int) -> dict:
        return make_chunk(seed, images=args.images, size=args.size, pixel_size=pixel_size)

    return run_generate(args, chunk, args.images, "images")


def _fit(args: argparse.Namespace) -> int:
    from atomlens.cli.train import run_fit
    from atomlens.locate.network import build_network
    from atomlens.locate.training import SegmentationTraining, check_examples, save_segmentor

    task = SegmentationTraining(contrastive=args.contrastive)
    return run_fit(
        args,
        lambda: build_network(args.network),
        task,
        check_examples,
        lambda run, **parts: save_segmentor(
            run, args.output, kind=args.network, overwrite=args.overwrite, **parts
        ),
    )
