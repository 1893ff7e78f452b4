"""Batch embedding of files, folders and JSONL item files to parquet (``geovec embed``)."""

from geovec._lazy import lazy_exports

__all__ = ["EmbedJob", "EmbedJobError", "EmbedSummary", "Record", "iter_records"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "EmbedJob": "geovec.embed.job", "EmbedJobError": "geovec.embed.job", "EmbedSummary": "geovec.embed.job",
    "Record": "geovec.embed.sources", "iter_records": "geovec.embed.sources",
})
