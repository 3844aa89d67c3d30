"""Train on a bank that is still being filled, within a budget, on one or many processes.

:func:`fit_streaming` draws random batches from an :class:`~atomlens.train.bank.ExampleBank`,
takes optimiser steps with a warm-up + cosine learning rate over a wall-clock (or step) budget,
keeps an exponential average of the weights (the model that is validated and returned), picks up
new chunks of the bank as they appear, logs, validates, and writes checkpoints it can resume from.
Under ``torchrun`` every process draws its own batches and DistributedDataParallel averages the
gradients; rank 0's clock sets the schedule and the stop for all, and only rank 0 validates,
checkpoints and logs.

The task supplies what is specific to it (:class:`BankTask`): the loss of a batch and the
validation metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from atomlens.core.validation import ParameterError, check_parameter, check_size
from atomlens.train._ranges import check_setting
from atomlens.train.averaging import ExponentialAverage, unwrap
from atomlens.train.bank import ExampleBank
from atomlens.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from atomlens.train.distributed import Distributed
from atomlens.train.loop import optimise
from atomlens.train.schedule import Budget, warmup_cosine

__all__ = ["BankTask", "StreamingRun", "TrainingSettings", "fit_streaming"]

logger = logging.getLogger("atomlens.train")


class BankTask(Protocol):
    """What a task tells the streaming trainer."""

    def loss(
        self,
        model: torch.nn.Module,
        batch: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        device: torch.device,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of a batch of bank examples (with any augmentation drawn from ``rng``)."""
        ...

    def validate(
        self, model: torch.nn.Module, arrays: Mapping[str, np.ndarray]
    ) -> dict[str, float]:
        """Metrics of the (averaged, eval-mode, CPU or device) model on validation examples."""
        ...


@dataclass(frozen=True)
class TrainingSettings:
    """Hyper-parameters of a streaming training run.

    Every value is checked against its range (``atomlens.train._ranges.SETTINGS`` and
    ``PARAMETERS["batch_size"]`` of :mod:`atomlens.core.validation`); a value outside it raises
    :class:`~atomlens.core.validation.ParameterError` naming the keyword.

    Parameters
    ----------
    minutes : float, optional
        Wall-clock budget [min], in (0, 1e6].
    steps : int, optional
        Step budget (with ``minutes``, whichever ends first), in [1, 1e9].
    batch_size : int
        Examples per step and process, in [1, 4096].
    lr : float
        Peak learning rate of AdamW, in (0, 1].
    weight_decay : float
        AdamW weight decay, in [0, 1].
    warmup : float
        Share of the budget for the linear warm-up, in [0, 1).
    ema : float
        Decay of the exponential weight average, in [0, 1).
    seed : int
        Seeds the initial weights and (with the rank) the batch draws, in [0, 2^63).
    log_every, validate_every, refresh_every, checkpoint_every : int
        In steps, in [1, 1e9]: log a record, add validation metrics to it, read new bank chunks,
        write the checkpoint.
    validation_examples : int
        Validation examples used during training (all of them at the end), in [1, 1e7].
    initial_weights : str, optional
        The model whose weights the network started from (fine-tuning), recorded only: the
        caller loads them (``atomlens train ... fit --init``).
    """

    minutes: float | None = 60.0
    steps: int | None = None
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03
    ema: float = 0.998
    seed: int = 0
    log_every: int = 50
    validate_every: int = 500
    refresh_every: int = 500
    checkpoint_every: int = 500
    validation_examples: int = 512
    initial_weights: str | None = None

    def __post_init__(self) -> None:
        budget = Budget(self.minutes, self.steps)  # validates the budget
        checked = {
            "minutes": budget.minutes,
            "steps": budget.steps,
            "batch_size": check_parameter("batch_size", self.batch_size),
            "lr": check_setting("lr", self.lr),
            "weight_decay": check_setting("weight_decay", self.weight_decay),
            "seed": check_setting("seed", self.seed),
            "validation_examples": check_setting("validation_examples", self.validation_examples),
        }
        for name in ("log_every", "validate_every", "refresh_every", "checkpoint_every"):
            checked[name] = check_setting(name, getattr(self, name), kind="every")
        for name in ("warmup", "ema"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise ParameterError(f"{name}=... must be a number in [0, 1), got {value!r}.")
            if not 0 <= value < 1:
                raise ParameterError(f"{name}=... must lie in [0, 1), got {value!r}.")
            checked[name] = float(value)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def budget(self) -> Budget:
        """The run's budget."""
        return Budget(self.minutes, self.steps)


@dataclass
class StreamingRun:
    """The outcome of :func:`fit_streaming`.

    Attributes
    ----------
    model : torch.nn.Module
        The exponential average of the weights, on the CPU, in eval mode.
    log : list of dict
        One record per ``log_every`` steps.
    steps : int
    minutes : float
        Training time [min] (including time before a resume).
    examples : int
        Examples in the bank at the end.
    settings : TrainingSettings
    world_size : int
        Processes that trained together.
    """

    model: torch.nn.Module
    log: list[dict[str, Any]]
    steps: int
    minutes: float
    examples: int
    settings: TrainingSettings
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Training facts for a model config (JSON-friendly): what ran, then the settings."""
        return {
            "steps": self.steps,
            "minutes": round(self.minutes, 1),
            "examples_in_bank_at_end": self.examples,
            "processes": self.world_size,
            "settings": asdict(self.settings),
        }


def fit_streaming(
    model: torch.nn.Module,
    task: BankTask,
    bank: ExampleBank,
    settings: TrainingSettings,
    *,
    validation: Mapping[str, np.ndarray] | None = None,
    distributed: Distributed | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> StreamingRun:
    """Train ``model`` on random batches of ``bank`` until the budget is spent.

    Parameters
    ----------
    model : torch.nn.Module
        Freshly built (its initial weights come from ``settings.seed``) or to be resumed.
    task : BankTask
        The task's loss and validation.
    bank : ExampleBank
        Refreshed every ``settings.refresh_every`` steps.
    settings : TrainingSettings
    validation : dict of ndarray, optional
        Validation examples (a different bank); metrics join every ``validate_every``-th record.
    distributed : Distributed, optional
        From :func:`atomlens.train.distributed.setup`; default one process on the CPU.
    checkpoint : str or Path, optional
        Checkpoint file, written every ``checkpoint_every`` steps and at the end (rank 0).
    resume : bool
        Continue from ``checkpoint`` (weights, average, optimiser, step, clock, batch draws).
    progress : bool
        A progress bar over the budget (rank 0).
    on_record : callable, optional
        Called with each log record (rank 0), e.g. to print it.

    Returns
    -------
    StreamingRun
    """
    distributed = distributed or Distributed()
    budget = settings.budget
    check_size(  # before the work: a batch as float32, as the networks take it
        f"a batch of {settings.batch_size} examples (batch_size=)",
        (settings.batch_size, bank.example_size),
        itemsize=4,
    )
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng([settings.seed, distributed.rank])
    wrapped = distributed.wrap(model)
    average = ExponentialAverage(wrapped, settings.ema)
    optimiser = torch.optim.AdamW(
        wrapped.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    step, spent, log = 0, 0.0, []
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs the checkpoint path.")
        state = load_checkpoint(checkpoint)
        try:
            unwrap(wrapped).load_state_dict(state.model)
            average.model.load_state_dict(state.average)
            optimiser.load_state_dict(state.optimiser)
            if distributed.is_main:
                rng.bit_generator.state = state.rng
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            detail = next(
                (line for line in lines if "mismatch" in line), lines[-1] if lines else ""
            )
            raise ValueError(
                f"The checkpoint {checkpoint} does not fit this model or these settings (another "
                f"network width or task?): {detail.rstrip('.')}; start without resume=True, or "
                "give the settings it was written with."
            ) from error
        step, spent, log = state.step, state.seconds, list(state.log)
        if not distributed.is_main:  # other ranks continue on a fresh stream of their own
            rng = np.random.default_rng([settings.seed, distributed.rank, step])
        logger.info("resumed at step %d after %.1f min", step, spent / 60)
    validation_subset = None
    if validation is not None:
        validation_subset = {k: v[: settings.validation_examples] for k, v in validation.items()}
    main = distributed.is_main
    bar = tqdm(total=100, desc="training", unit="%", disable=not (progress and main))
    start = time.perf_counter() - spent

    def save() -> None:
        if checkpoint is not None and main:
            save_checkpoint(
                checkpoint,
                Checkpoint(
                    model=unwrap(wrapped).state_dict(),
                    average=average.model.state_dict(),
                    optimiser=optimiser.state_dict(),
                    step=step,
                    seconds=time.perf_counter() - start,
                    rng=rng.bit_generator.state,
                    log=log,
                ),
            )

    logger.info("%d examples in the bank; budget %s", len(bank), budget)
    while True:
        seconds = distributed.broadcast(time.perf_counter() - start)
        fraction = budget.fraction(seconds, step)
        if fraction >= 1:
            break
        bar.update(int(100 * fraction) - bar.n)
        for group in optimiser.param_groups:
            group["lr"] = settings.lr * warmup_cosine(fraction, warmup=settings.warmup)
        batch = bank.take(rng.integers(len(bank), size=settings.batch_size))
        wrapped.train()
        loss, parts = task.loss(wrapped, batch, rng, distributed.device)
        optimise(loss, optimiser, where=f"step {step + 1}")
        average.update(wrapped)
        step += 1
        if step % settings.refresh_every == 0:
            bank.refresh()
        if step % settings.log_every == 0 and main:
            record = {"step": step, "minutes": round(seconds / 60, 2), "examples": len(bank)}
            record |= {"loss": round(loss.item(), 4)} | {k: round(v, 4) for k, v in parts.items()}
            if validation_subset is not None and step % settings.validate_every == 0:
                metrics = task.validate(average.model, validation_subset)
                record |= {k: round(v, 4) for k, v in metrics.items()}
            log.append(record)
            if on_record is not None:
                on_record(record)
        if step % settings.checkpoint_every == 0:
            save()
    bar.update(100 - bar.n)
    bar.close()
    save()
    distributed.barrier()
    return StreamingRun(
        model=average.model.cpu().eval(),
        log=log,
        steps=step,
        minutes=(time.perf_counter() - start) / 60,
        examples=len(bank),
        settings=settings,
        world_size=distributed.world_size,
    )
