"""``atomlens train TASK STEP``: train the models that atomlens ships, or your own.

Each task has the same three steps: ``generate`` simulates a bank of examples (chunk ``c`` from
seed ``c``, so banks are reproducible and can grow), ``fit`` trains on it within a time budget
while ``generate`` may still be adding chunks, and ``recalibrate`` refits the uncertainty
calibration of a trained model on validation data. Every step runs unchanged on one CPU, one GPU
(``--device cuda``) or several processes under ``torchrun --nproc-per-node N``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from atomlens.cli._common import check_outputs

#: The largest network width accepted on the command line (memory grows with its square).
MAX_WIDTH = 256


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="simulate training data and train a model (CPU, GPU or torchrun)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True)
    _add_calibrate(tasks)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (a GPU when there is one)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process")


def _add_calibrate(tasks: argparse._SubParsersAction) -> None:
    from atomlens.data.ronchigrams import RONCHIGRAM_PRIORS

    calibrate = tasks.add_parser(
        "calibrate",
        help="the Ronchigram aberration estimator",
        description="Train the Ronchigram aberration estimator (atomlens calibrate).",
    )
    steps = calibrate.add_subparsers(dest="step", metavar="STEP", required=True)

    generate = steps.add_parser("generate", help="simulate bank chunks of Ronchigrams")
    generate.add_argument("--bank", type=Path, required=True, help="bank folder")
    generate.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    generate.add_argument("--chunks", type=int, default=100, help="number of chunks")
    generate.add_argument("--chunk-size", type=int, default=512, help="Ronchigrams per chunk")
    generate.add_argument(
        "--prior", choices=sorted(RONCHIGRAM_PRIORS), default="broad", help="aberration prior"
    )
    _common(generate)
    generate.set_defaults(run=_calibrate_generate)

    fit = steps.add_parser("fit", help="train on a bank (validation data in BANK/validation)")
    fit.add_argument("--bank", type=Path, required=True, help="bank folder")
    fit.add_argument("--output", "-o", type=Path, required=True, help="model folder to write")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    fit.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget [min]")
    fit.add_argument("--steps", type=int, default=None, help="step budget (with --minutes)")
    fit.add_argument("--batch", type=int, default=32, help="examples per step and process")
    fit.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    fit.add_argument("--ema", type=float, default=0.998, help="weight-average decay")
    fit.add_argument("--width", type=int, default=16, help="network base width")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--card", type=Path, default=None, help="Markdown model card to ship")
    fit.add_argument("--checkpoint", type=Path, default=None, help="checkpoint file")
    fit.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    fit.add_argument("--log-every", type=int, default=50, help="[steps]")
    fit.add_argument("--validate-every", type=int, default=500, help="[steps]")
    fit.add_argument("--refresh-every", type=int, default=500, help="read new chunks [steps]")
    fit.add_argument("--checkpoint-every", type=int, default=500, help="[steps]")
    _common(fit)
    fit.set_defaults(run=_calibrate_fit)

    recalibrate = steps.add_parser("recalibrate", help="refit sigma on a validation bank")
    recalibrate.add_argument("--model", type=Path, required=True, help="model folder")
    recalibrate.add_argument("--bank", type=Path, required=True, help="validation bank")
    _common(recalibrate)
    recalibrate.set_defaults(run=_calibrate_recalibrate)


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}.")
        torch.set_num_threads(args.threads)


def _calibrate_generate(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import make_chunk
    from atomlens.train import generate_bank
    from atomlens.train.distributed import process_position

    _set_threads(args)
    if args.chunks < 1 or args.chunk_size < 1 or args.seed < 0:
        raise ValueError("--chunks and --chunk-size must be >= 1 and --seed >= 0.")
    # Under torchrun each process simulates every WORLD_SIZE-th chunk.
    rank, world, _ = process_position()
    seeds = range(args.seed + rank, args.seed + args.chunks, world)
    device = None if args.device == "auto" else args.device
    written = generate_bank(
        args.bank,
        lambda seed: make_chunk(seed, prior=args.prior, size=args.chunk_size, device=device),
        seeds,
    )
    print(f"{len(written)} chunks of {args.chunk_size} Ronchigrams written to {args.bank}")
    return 0


def _calibrate_fit(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import EstimatorTraining, build_network, save_estimator
    from atomlens.train import ExampleBank, TrainingSettings, fit_streaming
    from atomlens.train.distributed import setup

    _set_threads(args)
    if not 1 <= args.width <= MAX_WIDTH:
        raise ValueError(f"--width must lie in [1, {MAX_WIDTH}], got {args.width}.")
    if args.resume and args.checkpoint is None:
        raise ValueError("--resume needs --checkpoint FILE.")
    check_outputs([args.output], args.overwrite, inputs=[args.bank, *filter(None, [args.card])])
    settings = TrainingSettings(
        minutes=args.minutes,
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        ema=args.ema,
        seed=args.seed,
        log_every=args.log_every,
        validate_every=args.validate_every,
        refresh_every=args.refresh_every,
        checkpoint_every=args.checkpoint_every,
    )
    card = args.card.read_text() if args.card else None
    bank = ExampleBank(args.bank)
    validation = ExampleBank(args.bank / "validation").arrays()
    distributed = setup(args.device)
    try:
        torch.manual_seed(args.seed)
        run = fit_streaming(
            build_network(args.width),
            EstimatorTraining(),
            bank,
            settings,
            validation=validation,
            distributed=distributed,
            checkpoint=args.checkpoint,
            resume=args.resume,
            on_record=lambda record: print(json.dumps(record), flush=True),
        )
        if distributed.is_main:
            summary = save_estimator(
                run,
                args.output,
                bank=bank,
                validation=validation,
                width=args.width,
                card=card,
                overwrite=args.overwrite,
            )
            print(json.dumps(summary), flush=True)
            print(f"saved {args.output} ({run.steps} steps, {run.minutes:.1f} min)", flush=True)
        distributed.barrier()
    finally:
        distributed.close()
    return 0


def _calibrate_recalibrate(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import recalibrate

    _set_threads(args)
    print(json.dumps(recalibrate(args.model, args.bank), indent=1))
    return 0
