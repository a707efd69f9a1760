"""Hybrid retrieval over a user's memories: embedders, BM25 keywords, the per-user index, and `Retrieval`."""
