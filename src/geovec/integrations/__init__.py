"""Adapters to the tools geovec sits beside: sentence-transformers (:mod:`.sentence_transformers`) and
MTEB / MIEB (:mod:`.mteb`). Each imports its library only when used (``pip install 'geovec[st]'`` /
``'geovec[mteb]'``)."""
