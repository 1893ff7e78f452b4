"""The top of the text tower as its own module: all-MiniLM-L6-v2 run up to a split layer, and a trainable copy of
the layers above it (the dual-path model's global path can fine-tune it; ``geovec.train.text_top`` trains it on
cached lower-layer states, so a training step costs only the copied layers).

A sentence embedding through a text top is the one sentence-transformers computes (token states mean-pooled over
the attention mask, L2 norm), with layers ``split..`` replaced by the copy: with an untouched copy it equals
:func:`top_sentence_embeddings` without a top (tested).
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn

from geovec.models.pooling import sentence_vectors


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) 0/1 mask -> (B, 1, 1, T) additive mask (0 where attended, the dtype's minimum where padded)."""
    m = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - m) * torch.finfo(dtype).min


def run_layers(layers, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """BERT layers on (B, T, d) states with a (B, T) 0/1 mask."""
    ext = additive_mask(attention_mask, hidden.dtype)
    for layer in layers:
        out = layer(hidden, attention_mask=ext)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def run_to_split(bert, input_ids: torch.Tensor | None, attention_mask: torch.Tensor, split: int,
                 inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
    """BERT embeddings and layers ``0..split-1``: the (B, T, d) states entering layer ``split``."""
    hidden = bert.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds,
                             token_type_ids=torch.zeros_like(attention_mask))
    return run_layers(bert.encoder.layer[:split], hidden, attention_mask)


class TextTop(nn.Module):
    """A trainable copy of a BERT's layers ``split..`` (layer states in, token states out)."""

    def __init__(self, bert, split: int):
        super().__init__()
        n = len(bert.encoder.layer)
        if not 0 <= split < n:
            raise ValueError(f"text top split must be in 0..{n - 1} (layers of the text tower), got {split}")
        self.split = int(split)
        self.layers = copy.deepcopy(bert.encoder.layer[split:])

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return run_layers(self.layers, hidden, attention_mask)


@torch.no_grad()
def sentence_embeddings(tokenizer, states: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], texts: Sequence[str],
                        max_tokens: int = 256, batch_size: int = 64, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, d) unit sentence embeddings as sentence-transformers computes them: the tokenizer with its special
    tokens, ``states(input_ids, attention_mask)`` -> token states, mean over the mask, L2 norm. Texts are batched
    by length (little padding)."""
    out: torch.Tensor | None = None
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                        return_tensors="pt")
        mask = enc["attention_mask"].to(device)
        rows = sentence_vectors(states(enc["input_ids"].to(device), mask), mask).float().cpu()
        if out is None:
            out = torch.empty(len(texts), rows.shape[1])
        out[idx] = rows
    return out if out is not None else torch.empty(0, 0)


def top_sentence_embeddings(bert, tokenizer, top: TextTop | None, texts: Sequence[str], max_tokens: int = 256,
                            batch_size: int = 64) -> torch.Tensor:
    """(N, d) unit sentence embeddings of a BERT, with ``top`` in place of its layers ``top.split..`` (None: the
    tower as it is)."""
    def states(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if top is None:
            return bert(input_ids=ids, attention_mask=mask).last_hidden_state
        return top(run_to_split(bert, ids, mask, top.split), mask)

    return sentence_embeddings(tokenizer, states, texts, max_tokens, batch_size, next(bert.parameters()).device)
