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
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atomlens.cli._common import check_outputs

if TYPE_CHECKING:  # importing atomlens.train loads torch; the parser is built without it
    from atomlens.train import TrainingSettings

#: The aberration priors of ``--prior``: the names of ``atomlens.data.RONCHIGRAM_PRIORS``, listed
#: here so that building the parser imports no torch (a test keeps the two the same).
PRIORS = ("broad", "corrected", "focus-astigmatism")
#: The amorphous specimens of ``--specimen``: the names of
#: ``atomlens.calibrate.training.SPECIMENS`` (a test keeps the two the same).
SPECIMENS = ("independent", "hard-core")
#: Most CPU threads per process: 4 per core of this machine (more only slows a run down, and
#: a huge number makes the OpenMP runtime abort the process).
MAX_THREADS = 4 * (os.cpu_count() or 1)


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="simulate training data and train a model (CPU, GPU or torchrun)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    tasks = train.add_subparsers(dest="task", metavar="TASK", required=True)
    _add_calibrate(tasks)
    from atomlens.cli.train_enhance import add_enhance
    from atomlens.cli.train_locate import add_locate
    from atomlens.cli.train_restore import add_restore

    add_restore(tasks)
    add_locate(tasks)
    add_enhance(tasks)


def add_fit_arguments(
    fit: argparse.ArgumentParser,
    *,
    batch: int,
    lr: float,
    ema: float,
    every: tuple[int, int, int],
) -> None:
    """The flags every task's ``fit`` step shares (bank, output, budget, optimiser, checkpoints).

    ``every`` gives the defaults of --validate-every, --refresh-every and --checkpoint-every.
    """
    fit.add_argument("--bank", type=Path, required=True, help="bank folder")
    fit.add_argument("--output", "-o", type=Path, required=True, help="model folder to write")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    fit.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget [min]")
    fit.add_argument("--steps", type=int, default=None, help="step budget (with --minutes)")
    fit.add_argument(
        "--batch", "--batch-size", type=int, default=batch, help="examples per step and process"
    )
    fit.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    fit.add_argument("--ema", type=float, default=ema, help="weight-average decay")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--card", type=Path, default=None, help="Markdown model card to ship")
    fit.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint file (an existing one is continued with --resume, replaced only with "
        "--overwrite)",
    )
    fit.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    fit.add_argument("--log-every", type=int, default=50, help="[steps]")
    validate, refresh, checkpoint = every
    fit.add_argument("--validate-every", type=int, default=validate, help="[steps]")
    fit.add_argument("--refresh-every", type=int, default=refresh, help="read new chunks [steps]")
    fit.add_argument("--checkpoint-every", type=int, default=checkpoint, help="[steps]")


def fit_settings(args: argparse.Namespace) -> TrainingSettings:
    """The TrainingSettings of a ``fit`` step's flags (checked there), after --resume's rule."""
    from atomlens.train import TrainingSettings

    if args.resume and args.checkpoint is None:
        raise ValueError("--resume needs --checkpoint FILE.")
    return TrainingSettings(
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
        initial_weights=None if getattr(args, "init", None) is None else str(args.init),
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (a GPU when there is one)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process")


def _add_calibrate(tasks: argparse._SubParsersAction) -> None:
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
        "--prior", choices=PRIORS, default="broad", help="aberration prior (broad)"
    )
    generate.add_argument(
        "--specimen",
        choices=SPECIMENS,
        default="independent",
        help="amorphous specimens: atoms placed independently (as the shipped model was first "
        "trained) or with a hard core, thicker (independent)",
    )
    _common(generate)
    generate.set_defaults(run=_calibrate_generate)

    fit = steps.add_parser("fit", help="train on a bank (validation data in BANK/validation)")
    add_fit_arguments(fit, batch=32, lr=2e-3, ema=0.998, every=(500, 500, 500))
    fit.add_argument("--width", type=int, default=16, help="network base width")
    fit.add_argument(
        "--init",
        help="start from this model's weights (a name or folder of an estimator of the same "
        "--width): fine-tuning",
    )
    _common(fit)
    fit.set_defaults(run=_calibrate_fit)

    recalibrate = steps.add_parser("recalibrate", help="refit sigma on a validation bank")
    recalibrate.add_argument("--model", type=Path, required=True, help="model folder")
    recalibrate.add_argument("--bank", type=Path, required=True, help="validation bank")
    _common(recalibrate)
    recalibrate.set_defaults(run=_calibrate_recalibrate)

    vae_generate = steps.add_parser(
        "vae-generate",
        help="simulate bank chunks for the VAE of VAE-EM (focus-astigmatism prior, amorphous)",
    )
    vae_generate.add_argument("--bank", type=Path, required=True, help="bank folder")
    vae_generate.add_argument("--seed", type=int, default=0, help="seed of the first chunk")
    vae_generate.add_argument("--chunks", type=int, default=60, help="number of chunks")
    vae_generate.add_argument("--chunk-size", type=int, default=512, help="Ronchigrams per chunk")
    _common(vae_generate)
    vae_generate.set_defaults(run=_vae_generate)

    vae_fit = steps.add_parser(
        "vae-fit",
        help="train the VAE of VAE-EM on a bank and fit its map from aberrations to codes",
    )
    add_fit_arguments(vae_fit, batch=128, lr=1e-3, ema=0.995, every=(500, 200, 500))
    vae_fit.add_argument("--latent", type=int, default=8, help="code dimensions")
    vae_fit.add_argument("--beta", type=float, default=1.0, help="weight of the KL term")
    _common(vae_fit)
    vae_fit.set_defaults(run=_vae_fit)

    vae_refit = steps.add_parser(
        "vae-refit", help="refit a trained VAE's map from aberrations to codes on a bank"
    )
    vae_refit.add_argument("--model", type=Path, required=True, help="model folder")
    vae_refit.add_argument("--bank", type=Path, required=True, help="bank (with BANK/validation)")
    _common(vae_refit)
    vae_refit.set_defaults(run=_vae_refit)


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise ValueError(
                f"--threads must lie in [1, {MAX_THREADS}] (4 per CPU core of this machine), "
                f"got {args.threads}."
            )
        import torch

        torch.set_num_threads(args.threads)


def _check_parent(path: Path, flag: str) -> None:
    """Refuse an output whose folder would have to be made inside a file."""
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise NotADirectoryError(f"{flag} {path}: {above} is a file, so nothing can be made in it.")


def _calibrate_generate(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import make_chunk
    from atomlens.core.validation import check_parameter
    from atomlens.train import generate_bank
    from atomlens.train.distributed import process_position

    _set_threads(args)
    chunks = check_parameter("chunks", args.chunks, kind="count")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}.")
    rank, world, _ = process_position()  # under torchrun each process simulates every N-th
    seeds = range(args.seed + rank, args.seed + chunks, world)
    _check_chunk_settings(args, seeds)  # before any work (make_chunk checks them again)
    written = generate_bank(
        args.bank,
        lambda seed: make_chunk(
            seed,
            prior=args.prior,
            chunk_size=args.chunk_size,
            device=args.device,
            specimen=args.specimen,
        ),
        seeds,
    )
    print(f"{len(written)} chunks of {args.chunk_size} Ronchigrams written to {args.bank}")
    return 0


def _check_chunk_settings(args: argparse.Namespace, seeds: range) -> None:
    """Refuse the chunk size, the seeds, the device and the bank folder before any work."""
    from atomlens.calibrate.training import check_examples_size
    from atomlens.core.validation import check_parameter
    from atomlens.train._ranges import check_setting
    from atomlens.train.bank import check_bank_folder
    from atomlens.train.distributed import resolve_device

    size = check_parameter("chunk_size", args.chunk_size, kind="count")
    check_examples_size(size, "a bank chunk (chunk_size=)")
    if len(seeds):
        check_setting("seed", seeds[-1])
    resolve_device(args.device)
    check_bank_folder(args.bank)


def run_generate(
    args: argparse.Namespace, make_chunk: Callable[[int], dict], chunk_size: int, what: str
) -> int:
    """The ``generate`` step every image task shares: ``--chunks`` chunks from ``--seed`` on,
    ``make_chunk(seed)`` each, written atomically into ``--bank`` (each torchrun process takes
    every N-th seed); ``what`` names the examples in the summary line."""
    from atomlens.core.validation import check_parameter
    from atomlens.train import generate_bank
    from atomlens.train._ranges import check_setting
    from atomlens.train.bank import check_bank_folder
    from atomlens.train.distributed import process_position

    _set_threads(args)
    chunks = check_parameter("chunks", args.chunks, kind="count")
    check_parameter("chunk_size", chunk_size, kind="count")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}.")
    rank, world, _ = process_position()
    seeds = range(args.seed + rank, args.seed + chunks, world)
    if len(seeds):
        check_setting("seed", seeds[-1])
    check_bank_folder(args.bank)
    written = generate_bank(args.bank, make_chunk, seeds)
    print(f"{len(written)} chunks of {chunk_size} {what} written to {args.bank}")
    return 0


def run_fit(
    args: argparse.Namespace,
    make_network: Callable[[], Any],
    task: Any,
    check_examples: Callable[[Any, str], None],
    save: Callable[..., dict],
) -> int:
    """The ``fit`` step every task shares: checks, bank and validation, the streaming run
    (torchrun-aware), and the model folder written by rank 0.

    ``make_network()`` is called after ``torch.manual_seed(args.seed)``; ``save(run, bank=,
    validation=, card=)`` writes the model folder and returns the metrics printed.
    """
    from atomlens.train import ExampleBank, fit_streaming
    from atomlens.train.distributed import resolve_device, setup

    _set_threads(args)
    settings = fit_settings(args)
    resolve_device(args.device)
    _check_fit_outputs(args)
    card = args.card.read_text() if args.card else None
    bank = ExampleBank(args.bank)
    check_examples(bank.take([0]), str(args.bank))
    validation = ExampleBank(args.bank / "validation").arrays()
    check_examples(validation, str(args.bank / "validation"))
    distributed = setup(args.device)
    try:
        import torch

        torch.manual_seed(args.seed)
        run = fit_streaming(
            make_network(),
            task,
            bank,
            settings,
            validation=validation,
            distributed=distributed,
            checkpoint=args.checkpoint,
            resume=args.resume,
            on_record=lambda record: print(json.dumps(record), flush=True),
        )
        if distributed.is_main:
            metrics = save(run, bank=bank, validation=validation, card=card)
            print(json.dumps(metrics), flush=True)
            print(f"saved {args.output} ({run.steps} steps, {run.minutes:.1f} min)", flush=True)
        distributed.barrier()
    finally:
        distributed.close()
    return 0


def _calibrate_fit(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import (
        EstimatorTraining,
        build_network,
        check_examples,
        save_estimator,
    )

    network = build_network(args.width)  # checks the width before any other work
    if args.init is not None:
        _load_estimator(network, args.init, args.width)
    return run_fit(
        args,
        lambda: network,
        EstimatorTraining(),
        check_examples,
        lambda run, **parts: save_estimator(
            run, args.output, width=args.width, overwrite=args.overwrite, **parts
        ),
    )


def _load_estimator(network: Any, model: str, width: int) -> None:
    """Copy the weights of the estimator ``model`` (--init: a name or folder) into ``network``."""
    from atomlens.calibrate.training import TASK
    from atomlens.zoo import load_model

    source, config = load_model(model)
    if config.get("task") != TASK or config.get("arguments", {}).get("width") != width:
        raise ValueError(
            f"--init {model} is a {config.get('task')!r} model of width "
            f"{config.get('arguments', {}).get('width')!r}, not a {TASK!r} network of width "
            f"{width} (--width)."
        )
    network.load_state_dict(source.state_dict())


def _vae_generate(args: argparse.Namespace) -> int:
    from atomlens.calibrate.vae_training import make_chunk

    _check_chunk_settings(args, range(args.seed, args.seed + max(args.chunks, 0)))
    return run_generate(
        args,
        lambda seed: make_chunk(seed, chunk_size=args.chunk_size, device=args.device),
        args.chunk_size,
        "Ronchigrams",
    )


def _vae_fit(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import check_examples
    from atomlens.calibrate.vae_training import VAETraining, build_vae, save_vae

    network = build_vae(args.latent)  # checks --latent and --beta before any other work
    task = VAETraining(args.beta)
    return run_fit(
        args,
        lambda: network,
        task,
        check_examples,
        lambda run, **parts: save_vae(
            run,
            args.output,
            latent=args.latent,
            beta=args.beta,
            overwrite=args.overwrite,
            **parts,
        ),
    )


def _vae_refit(args: argparse.Namespace) -> int:
    from atomlens.calibrate.vae_training import refit_map

    _set_threads(args)
    print(json.dumps(refit_map(args.model, args.bank), indent=1))
    return 0


def _check_fit_outputs(args: argparse.Namespace) -> None:
    """The model folder and the checkpoint, checked before the work.

    The model folder: not the bank or the card, not inside a file, an existing one only with
    --overwrite. The checkpoint: a file that is none of the inputs (the bank's chunks, the
    card) and not the model folder or inside it; an existing one is continued with --resume and
    replaced only with --overwrite.
    """
    inputs = [args.bank, *sorted(args.bank.glob("chunk_*")), *filter(None, [args.card])]
    output = args.output
    check_outputs([output], args.overwrite, inputs)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"-o {output} is a file; give a folder for the model.")
    _check_parent(output, "-o")
    checkpoint = args.checkpoint
    if checkpoint is None:
        return
    if checkpoint.resolve() == output.resolve() or output.resolve() in checkpoint.resolve().parents:
        raise ValueError(
            f"--checkpoint {checkpoint} is the model folder -o {output} or inside it; give a "
            "checkpoint file elsewhere."
        )
    _check_parent(checkpoint, "--checkpoint")
    if checkpoint.is_file() and not (args.resume or args.overwrite):
        raise FileExistsError(
            f"--checkpoint {checkpoint} exists; pass --resume to continue from it, --overwrite "
            "to replace it, or choose another name."
        )
    check_outputs([checkpoint], True, inputs, files=True)


def _calibrate_recalibrate(args: argparse.Namespace) -> int:
    from atomlens.calibrate.training import recalibrate
    from atomlens.train.distributed import resolve_device

    _set_threads(args)
    resolve_device(args.device)
    print(json.dumps(recalibrate(args.model, args.bank), indent=1))
    return 0
