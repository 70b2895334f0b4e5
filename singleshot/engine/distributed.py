"""Data-parallel training across processes: the process group torchrun describes, and what the trainer needs of it.

``torchrun --nproc_per_node=N -m singleshot train CONFIG`` starts N copies of the trainer with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous address in their environment; :func:`init_distributed` joins them
into one process group (gloo on the CPU, nccl on CUDA). Each process trains ``train.batch_size`` images per step
on its own shard of every global batch (:class:`~singleshot.data.samplers.RunSampler`), DistributedDataParallel
averages the gradients, and rank 0 alone writes the run folder.

:class:`GlobalBatchNorm2d` is a BatchNorm whose statistics span the global batch on any backend: torch's own
``SyncBatchNorm`` refuses CPU tensors, so gloo runs (and the tests) could not use it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from singleshot.config import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run: ``rank`` of ``world_size`` (``local_rank`` on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # joined by init_distributed, so left by shutdown_distributed

    @property
    def enabled(self) -> bool:
        """More than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """This process writes the run folder (checkpoints, logs, validation)."""
        return self.rank == 0


def launched_world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``; 1 without a launcher)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes") from None


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun describes; returns the context and this process's device.

    On CUDA each process takes the GPU of its ``LOCAL_RANK`` and the backend is nccl; on the CPU it is gloo. A
    single process (no ``WORLD_SIZE``, or 1) gets a disabled context and ``device`` unchanged.
    """
    world_size = launched_world_size()
    if world_size <= 1:
        return DistContext(), device
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed: train with one process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank}: only {torch.cuda.device_count()} CUDA device(s) on this "
                              f"machine (--nproc_per_node at most that)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        # Rank 0 validates while the others wait at the next collective: allow a long validation.
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend(), owns), device


def shutdown_distributed(context: DistContext) -> None:
    """Leave the process group :func:`init_distributed` joined (nothing for a single process)."""
    global _BATCHNORM_GROUP
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()
    _BATCHNORM_GROUP = None


def barrier(context: DistContext) -> None:
    """Wait until every process gets here."""
    if context.enabled:
        dist.barrier()


def broadcast_value(context: DistContext, value: object) -> object:
    """Rank 0's ``value`` in every process (a picklable object)."""
    if not context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_values(context: DistContext, value: object) -> list[object]:
    """Every process's ``value``, in rank order (a picklable object)."""
    if not context.enabled:
        return [value]
    values: list[object] = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values


def all_sum(context: DistContext, values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over the processes (a new tensor, no gradient)."""
    values = values.detach().clone()
    if context.enabled:
        dist.all_reduce(values)
    return values


# -------------------------------------------------------------------------------------------- global BatchNorm
#: The process group of :class:`GlobalBatchNorm2d`'s collectives, apart from DistributedDataParallel's; held here,
#: not by the layers, so the model stays copyable (the EMA and validation deep-copy it).
_BATCHNORM_GROUP = None

class _SumOverProcesses(torch.autograd.Function):
    """``sum over processes of x``, differentiable: every process's loss depends on the sum, so the gradient of
    ``x`` is the sum of the processes' incoming gradients (on :data:`_BATCHNORM_GROUP`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x, group=_BATCHNORM_GROUP)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, group=_BATCHNORM_GROUP)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (every process's share), on any backend.

    The mean and variance are all-reduced sums over the processes (two passes, the variance around the global
    mean, as a single process computes it), through differentiable collectives, so the gradients are those of one
    process holding the whole batch. Evaluation, and a single process, use the running statistics / plain
    BatchNorm. The collectives run on their own process group, apart from DistributedDataParallel's gradient
    buckets (``_BATCHNORM_GROUP``). Its state dict is BatchNorm2d's: checkpoints load into the plain model.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        channels = input.shape[1]
        count = torch.tensor([input.numel() // channels], dtype=input.dtype, device=input.device)
        count = _SumOverProcesses.apply(count)
        mean = _SumOverProcesses.apply(input.sum(dim=(0, 2, 3))) / count  # (C,)
        centred = input - mean[None, :, None, None]
        var = _SumOverProcesses.apply(centred.square().sum(dim=(0, 2, 3))) / count  # (C,), biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = var * (count / (count - 1).clamp(min=1))  # running_var is unbiased, as BatchNorm's
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


def convert_global_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every BatchNorm2d synchronised across the processes: torch's ``SyncBatchNorm`` on CUDA (its
    fused kernels), :class:`GlobalBatchNorm2d` elsewhere. Call after :func:`init_distributed`."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    global _BATCHNORM_GROUP
    if _BATCHNORM_GROUP is None:
        _BATCHNORM_GROUP = dist.new_group(backend="gloo")  # every process creates it, in the same order
    return _swap_batchnorm(model)


def _swap_batchnorm(module: nn.Module) -> nn.Module:
    if type(module) is nn.BatchNorm2d:
        swapped = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats)
        swapped.load_state_dict(module.state_dict())
        swapped.train(module.training)
        return swapped.to(next(module.buffers(), torch.zeros(0)).device)
    for name, child in module.named_children():
        setattr(module, name, _swap_batchnorm(child))
    return module
