"""Batch embedding of files, folders and JSONL item files to parquet (``geovec embed``)."""

from geovec.embed.job import EmbedJob, EmbedJobError, EmbedSummary
from geovec.embed.sources import Record, iter_records

__all__ = ["EmbedJob", "EmbedJobError", "EmbedSummary", "Record", "iter_records"]
