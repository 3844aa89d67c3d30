"""Training every atomlens model: one optimiser step, a bank of simulated examples, a budget.

- ``ExampleBank``, ``generate_bank``, ``write_chunk``: simulated examples on disk in chunks, one
  seed per chunk, picked up while they are being written.
- ``fit_streaming``, ``TrainingSettings``, ``BankTask``, ``StreamingRun``: train within a
  wall-clock or step budget (warm-up + cosine learning rate, weight averaging, checkpoints and
  resume), on one CPU, one GPU or several processes under ``torchrun``
  (:mod:`atomlens.train.distributed`).
- ``fit``, ``History``: epochs over a DataLoader; ``optimise``: the optimiser step both share
  (``TrainingDivergedError`` when the loss becomes NaN or infinite).
- ``Budget``, ``warmup_cosine``, ``ExponentialAverage``, ``Checkpoint``: the parts.

The command is ``atomlens train TASK generate|fit|recalibrate``; see docs/architecture.md.
"""

from atomlens.train.averaging import ExponentialAverage
from atomlens.train.bank import ExampleBank, generate_bank, write_chunk
from atomlens.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from atomlens.train.loop import History, TrainingDivergedError, fit, optimise
from atomlens.train.schedule import Budget, warmup_cosine
from atomlens.train.streaming import BankTask, StreamingRun, TrainingSettings, fit_streaming

__all__ = [
    "BankTask",
    "Budget",
    "Checkpoint",
    "ExampleBank",
    "ExponentialAverage",
    "History",
    "StreamingRun",
    "TrainingDivergedError",
    "TrainingSettings",
    "fit",
    "fit_streaming",
    "generate_bank",
    "load_checkpoint",
    "optimise",
    "save_checkpoint",
    "warmup_cosine",
    "write_chunk",
]
