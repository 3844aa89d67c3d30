"""One process, one GPU, or many processes under ``torchrun``: the same training code.

``torchrun --nproc-per-node N`` starts N copies of a command and tells each its ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in the environment. :func:`setup` reads them: with more than
one process it joins the process group (NCCL on GPUs, Gloo on CPUs), gives each process its own
GPU (``cuda:LOCAL_RANK``), and the model is wrapped in DistributedDataParallel, which averages
the gradients of all processes at every step. Without ``torchrun`` it is a single process and
nothing is wrapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["Distributed", "process_position", "resolve_device", "setup"]


@dataclass(frozen=True)
class Distributed:
    """Where this process sits among the training processes.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Rank among all processes, their number, rank on this node.
    device : torch.device
        The device this process trains on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that logs, validates and writes files (rank 0)."""
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on this device, in DistributedDataParallel when several processes train."""
        model = model.to(self.device)
        if not self.active:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def broadcast(self, value: float) -> float:
        """Rank 0's ``value`` on every process (the clock behind the schedule and the stop)."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._comm_device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group (a no-op for one process)."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def resolve_device(requested: str | None = None, local_rank: int = 0) -> torch.device:
    """The torch device for ``requested``, checked: a CPU or an existing CUDA GPU.

    Parameters
    ----------
    requested : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``; None or ``"auto"`` take a GPU when there is one.
    local_rank : int
        This process's rank on its node: a plain ``"cuda"`` becomes ``cuda:LOCAL_RANK``.

    Raises
    ------
    ValueError
        An unknown device or one of another kind (``"meta"``, ``"mps"``), a GPU asked for where
        there is none, or a GPU index beyond those present.
    """
    if requested in (None, "auto"):
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    hint = "use 'cpu', 'cuda', 'cuda:N' or 'auto'"
    if not isinstance(requested, str):
        raise ValueError(f"Unknown device {requested!r}; {hint}.")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ValueError(f"Unknown device {requested!r}; {hint}.") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Device {requested!r} is not supported for training; {hint}.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Device {requested!r} was asked for, but no CUDA GPU is available.")
        count = torch.cuda.device_count()
        if device.index is None:
            device = torch.device("cuda", local_rank % count)
        elif device.index >= count:
            raise ValueError(
                f"Device {requested!r} was asked for, but there are only {count} CUDA GPU(s) "
                f"(cuda:0 to cuda:{count - 1})."
            )
    return device


def _device(requested: str | None, local_rank: int) -> torch.device:
    device = resolve_device(requested, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def process_position() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the environment ``torchrun`` sets; (0, 1, 0) without."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def setup(device: str | None = None) -> Distributed:
    """Join the training processes started by ``torchrun`` (if any) and pick the device.

    Parameters
    ----------
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None or ``"auto"`` takes a GPU when there is one.
        Under ``torchrun`` a plain ``"cuda"`` becomes ``cuda:LOCAL_RANK``.

    Returns
    -------
    Distributed

    Raises
    ------
    ValueError
        An unknown device, or a GPU asked for where there is none.
    """
    rank, world_size, local_rank = process_position()
    chosen = _device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank, chosen)
