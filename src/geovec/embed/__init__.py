"""Batch embedding of files, folders and JSONL item files to parquet (``geovec embed``)."""

from geovec.embed.job import EmbedJob, EmbedSummary
from geovec.embed.sources import Record, iter_records

__all__ = ["EmbedJob", "EmbedSummary", "Record", "iter_records"]
