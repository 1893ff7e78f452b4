"""GradCache (Gao et al. 2021): contrastive batches larger than memory allows, with the same gradients.

1. Embed every chunk of queries and candidates without a graph (``torch.no_grad``), remembering the RNG
   state before each chunk so dropout masks can be replayed exactly.
2. Compute the loss on the cached representations (which require grad) and backpropagate to them only.
3. Replay each chunk with a graph, under its saved RNG state, and backpropagate ``<rep, d loss / d rep>``:
   the chain rule gives exactly the full-batch parameter gradients while holding one chunk's graph at a time.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    size = size if size and size > 0 else max(1, len(items))
    return [items[i : i + size] for i in range(0, len(items), size)]


def gradcache_backward(embed: Callable[[Sequence], torch.Tensor], groups: Sequence[Sequence],
                       loss_fn: Callable[..., torch.Tensor], chunk_size: int) -> torch.Tensor:
    """Backpropagate ``loss_fn(*[embed(group) for group in groups])`` into the parameters used by ``embed``,
    computing the graph of at most ``chunk_size`` items at a time. Returns the (detached) loss.

    ``groups``: e.g. ``[queries, candidates]``; ``embed`` maps a list of inputs to (n, D) embeddings.
    """
    cached: list[list[torch.Tensor]] = []
    states: list[list[torch.Tensor]] = []
    for group in groups:
        reps, rng = [], []
        for chunk in _chunks(group, chunk_size):
            rng.append(torch.get_rng_state())
            with torch.no_grad():
                reps.append(embed(chunk))
        cached.append(reps)
        states.append(rng)
    after = torch.get_rng_state()
    full = [torch.cat(reps).detach().requires_grad_(True) for reps in cached]
    loss = loss_fn(*full)
    loss.backward()
    for group, rep, rng in zip(groups, full, states):
        offset = 0
        for chunk, state in zip(_chunks(group, chunk_size), rng):
            torch.set_rng_state(state)
            out = embed(chunk)
            grad = rep.grad[offset : offset + out.shape[0]]
            offset += out.shape[0]
            out.backward(grad)  # == d/dtheta of <out, grad>
    torch.set_rng_state(after)
    return loss.detach()
