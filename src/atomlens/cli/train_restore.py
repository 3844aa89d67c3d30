"""``atomlens train restore generate|fit``: the image restoration network (CGRDN)."""

from __future__ import annotations

import argparse
from pathlib import Path

MODALITIES = ("mixed", "stem", "haadf", "abf", "hrtem")
SIZES = ("compact", "full")


def add_restore(tasks: argparse._SubParsersAction) -> None:
    """The ``restore`` task of ``atomlens train``."""
    from atomlens.cli.train import _common, add_fit_arguments

    restore = tasks.add_parser(
        "restore",
        help="the image restoration network (CGRDN)",
        description="Train the restoration network of 'atomlens restore' on simulated pairs.",
    )
    steps = restore.add_subparsers(dest="step", metavar="STEP", required=True)

    generate = steps.add_parser("generate", help="simulate bank chunks of image pairs")
    generate.add_argument("--bank", type=Path, required=True, help="bank folder")
    generate.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    generate.add_argument("--chunks", type=int, default=100, help="number of chunks")
    generate.add_argument("--chunk-size", type=int, default=64, help="image pairs per chunk")
    generate.add_argument("--size", type=int, default=128, help="image size [px]")
    generate.add_argument("--modality", choices=MODALITIES, default="mixed")
    generate.add_argument(
        "--pixel-size-range",
        default="0.05,0.6",
        help="low,high pixel size [Å] (default 0.05,0.6)",
    )
    generate.add_argument(
        "--realism",
        action="store_true",
        help="draw specimen and optics effects of real images (ImageSampler realism=True)",
    )
    generate.add_argument(
        "--distortions",
        choices=("realistic", "shot"),
        default="realistic",
        help="the modality's whole detector and scan chain, or shot noise alone",
    )
    generate.add_argument(
        "--dose",
        help="low,high detected dose [e-/px], log-uniform (default: the chain's own range; "
        "20,2000 for shot noise)",
    )
    _common(generate)
    generate.set_defaults(run=_generate)

    fit = steps.add_parser("fit", help="train on a bank (validation data in BANK/validation)")
    add_fit_arguments(fit, batch=16, lr=1e-3, ema=0.999, every=(250, 100, 250))
    fit.add_argument("--network", choices=SIZES, default="compact", help="CGRDN size")
    fit.add_argument(
        "--init",
        help="start from this model's weights (a name or folder of the same --network size): "
        "fine-tuning",
    )
    fit.add_argument(
        "--adversarial",
        type=float,
        default=0.0,
        help="weight of the relativistic PatchGAN loss (0: L1 + adaptive only)",
    )
    _common(fit)
    fit.set_defaults(run=_fit)


def _range(flag: str, text: str, unit: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(
            f"{flag} must be two comma-separated numbers [{unit}], got {text!r}."
        ) from None
    return low, high


def _sampler_options(args: argparse.Namespace) -> dict:
    """The ImageSampler fields that --realism, --distortions and --dose set."""
    options: dict = {"distortions": args.distortions}
    if args.realism:
        options["realism"] = True
    if args.dose is not None:
        dose = _range("--dose", args.dose, "e-/px")
        key = "dose_per_pixel" if args.distortions == "shot" else "chain_dose_per_pixel"
        options[key] = dose
    return options


def _generate(args: argparse.Namespace) -> int:
    from atomlens.cli.train import run_generate
    from atomlens.data.samplers import ImageSampler
    from atomlens.restore.training import make_chunk

    pixel_size = _range("--pixel-size-range", args.pixel_size_range, "Å")
    options = _sampler_options(args)
    ImageSampler(modality=args.modality, size=args.size, pixel_size=pixel_size, **options)

    def chunk(seed: int) -> dict:
        return make_chunk(
            seed,
            modality=args.modality,
            chunk_size=args.chunk_size,
            size=args.size,
            pixel_size=pixel_size,
            sampler_options=options,
        )

    return run_generate(args, chunk, args.chunk_size, "image pairs")


def _fit(args: argparse.Namespace) -> int:
    from atomlens.cli.train import run_fit
    from atomlens.restore.training import RestorationTraining, check_examples, save_restorer

    def save(run, **parts) -> dict:
        modalities = sorted(parts["bank"].count_by("modality", default="mixed"))
        return save_restorer(run, args.output, size=args.network, modalities=modalities,
                             overwrite=args.overwrite, **parts)  # fmt: skip

    task = RestorationTraining(adversarial=args.adversarial)
    return run_fit(args, lambda: _start_network(args), task, check_examples, save)


def _start_network(args: argparse.Namespace):
    """A new network of size --network, or the weights of --init to fine-tune."""
    from atomlens.restore.network import build_network

    if args.init is None:
        return build_network(args.network)
    from atomlens.zoo import load_model

    model, config = load_model(args.init)
    if config.get("task") != "image-restoration" or config.get("size") != args.network:
        raise ValueError(
            f"--init {args.init} is a {config.get('task')!r} model of size "
            f"{config.get('size')!r}, not an image-restoration network of size {args.network!r}."
        )
    return model.train()
