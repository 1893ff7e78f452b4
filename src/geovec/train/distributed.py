"""Data-parallel training across processes (``torchrun``): negatives from every rank, averaged gradients.

``gather_keep_grad`` all-gathers embeddings so every rank scores its queries against the whole global batch,
while its own slice stays the autograd-connected tensor (``all_gather`` returns detached copies). Each rank
then computes the global loss times ``world_size``; its local representations receive the full gradient of the
global loss, and averaging parameter gradients over ranks (``all_reduce_grads``) gives exactly the gradient of a
single-process step on the global batch. Gradients are averaged once per step, by hand, instead of through
``DistributedDataParallel`` hooks: GradCache replays several forward passes per step through
``embed_prepared`` (not ``forward``), which DDP's reducer cannot follow; the arithmetic is the same.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def init_from_env(backend: str = "gloo") -> bool:
    """Join the process group that ``torchrun`` describes in the environment (no-op when run alone)."""
    if is_distributed() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    dist.init_process_group(backend=backend)
    return True


def gather_keep_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks (rank order); the local slice keeps its gradient. Ranks may hold
    different numbers of rows."""
    if not is_distributed():
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    width = max(sizes)
    padded = torch.zeros(width, *x.shape[1:], dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x.detach()
    parts = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    parts = [p[:s] for p, s in zip(parts, sizes)]
    parts[rank()] = x
    return torch.cat(parts)


def gather_objects(obj):
    """All-gather a picklable object (e.g. candidate keys) -> list in rank order."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_grads(params) -> None:
    """Average ``.grad`` of ``params`` over ranks (one flat all-reduce)."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
