"""Contrastive training of geovec models: InfoNCE with in-batch and hard negatives, GradCache, DDP negatives
across ranks, mixed-task batches, a frozen-tower feature cache, the JSONL data format and its converters.

Entry point: ``geovec train --config CONFIG [--data FILE.jsonl ...]`` (see :mod:`geovec.train.cli`).
"""
