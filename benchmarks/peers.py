"""memlayer side by side with Agno and mem0: the same work, one scripted model server, server time taken out.

The peers live in their own venv (this script installs nothing)::

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -r benchmarks/peers-requirements.txt -e .

then either everything from that venv, or memlayer from the project's venv and the peers from the other::

    /tmp/peers-venv/bin/python benchmarks/peers.py [--runs 5] [--steady 20] [--big 10000] [--json]
    UV_NO_SYNC=1 uv run python benchmarks/peers.py --peers-python /tmp/peers-venv/bin/python

The defaults take about 25 minutes on 2 cores, most of it seeding 10k memories one direct add at a time
(``--big 0`` skips that row; ``--runs 1 --steady 3 --search-size 50 --big 200`` is a smoke run).
``--memlayer-embedder lexical`` (or ``local``) measures memlayer with its own embedder instead of the server's.

Design. This process starts one scripted OpenAI-compatible server on 127.0.0.1 (a thread here) and
runs every measurement in a fresh worker subprocess (this file with ``--worker``): memlayer with
``--memlayer-python`` (default: this interpreter), Agno and mem0 with ``--peers-python``. The worker
sets the facts the next reply carries (``POST /_script``), times each call on the system-wide monotonic
clock, and afterwards reads the server's log (``GET /_log``): every request's start, end and prompt
tokens, so the server time inside each timed window is subtracted and its LLM calls and tokens counted.

The server answers each library in the format it asks for: memlayer's JSON-schema operations
(``response_format=json_schema``), Agno's ``add_memory`` tool calls and then a text answer once the tool
results come back (its MemoryManager runs a tool loop), mem0 2.2.1's one additive-extraction JSON object
(``{"memory": [{"id", "text"}]}``; v3 makes no second update call), Agno's agentic search
(``MemorySearchResponse``: the ids whose text shares a word with the query) and embeddings (a hashed
bag of words, ``--dim`` floats, float or base64). Every extraction stores the same two new facts.

Each library uses its embedded default store in a temp dir: memlayer a DuckDB file, Agno a SqliteDb
file, mem0 its local Qdrant (path in the temp dir, in memory as by default) with its SQLite history
there too (``MEM0_DIR`` too). Embeddings: memlayer and mem0 both call the server (memlayer through
``LiteLLMEmbedder`` with an ``openai:`` model string, so over its direct transport while LiteLLM is not
imported); Agno's memory does not embed. Telemetry off (``MEM0_TELEMETRY``,
``AGNO_TELEMETRY``). mem0's spaCy steps (entities, BM25 lemmas) run only with its ``nlp`` extra and a
downloaded model; by default they are skipped, as here. Tokens: tiktoken o200k_base over message
texts, tool calls, ``tools`` and ``response_format`` as JSON (LiteLLM's bundled file, no download).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LIBS = ("memlayer", "agno", "mem0")
USER = "ana@example.com"
WORDS = "tea coffee python porto lisbon gym running music sister project allergy guitar vegan".split()
KEY = "sk-local-scripted"


def message(i: int) -> str:
    return f"Note {i}: I live in Porto now and I drink green tea every morning."


def facts(i: int) -> list[str]:
    return [f"Lives in Porto (note {i})", f"Drinks green tea every morning (note {i})"]


def seed_text(i: int) -> str:
    return f"Fact {i} about {WORDS[i % 13]} and {WORDS[(i // 13) % 13]}"


def query(i: int) -> str:
    return f"what do I think about {WORDS[i % 13]}?"


# ---------------------------------------------------------------- the scripted server (this process)


def embed(text: str, dim: int) -> list[float]:
    """A hashed bag of words: deterministic, and texts sharing words are similar."""
    vec = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 40) & 1 else -1.0
    norm = sum(x * x for x in vec) ** 0.5 or 1.0
    return [x / norm for x in vec] if any(vec) else [1.0] + [0.0] * (dim - 1)


def embeddings_reply(body: dict[str, Any], dim: int) -> dict[str, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, text in enumerate(texts):
        vec: Any = embed(str(text), dim)
        if body.get("encoding_format") == "base64":
            vec = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vec})
    n = sum(len(str(t).split()) for t in texts)
    usage = {"prompt_tokens": n, "total_tokens": n}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def matching_ids(messages: list[dict[str, Any]]) -> list[str]:
    """Agno's agentic search: the ids of memories that share a word with the query (5 at most)."""
    system, question = str(messages[0]["content"]), str(messages[-1]["content"])
    wanted = {w for w in re.findall(r"\w+", question.split("query:")[-1].lower()) if len(w) > 3}
    pairs = re.findall(r"ID: (\S+)\nMemory: ([^\n]*)", system)
    return [mid for mid, text in pairs if wanted & set(re.findall(r"\w+", text.lower()))][:5]


def assistant(body: dict[str, Any], todo: list[str]) -> dict[str, Any]:
    """The reply each library's request asks for, carrying the scripted facts."""
    messages, fmt = body["messages"], body.get("response_format") or {}
    tools = [t["function"]["name"] for t in body.get("tools") or []]
    if "add_memory" in tools:  # Agno's MemoryManager: tool calls, then an answer to the tool results
        if messages[-1]["role"] == "tool":
            return {"role": "assistant", "content": "Stored the new memories."}
        calls = [{"id": f"call_{k}", "type": "function",
                  "function": {"name": "add_memory", "arguments": json.dumps({"memory": f, "topics": ["profile"]})}}
                 for k, f in enumerate(todo)]  # fmt: skip
        return {"role": "assistant", "content": None, "tool_calls": calls}
    schema = fmt.get("json_schema") or {}
    if schema.get("name") == "MemorySearchResponse":
        content: Any = {"memory_ids": matching_ids(messages)}
    elif fmt.get("type") == "json_schema":  # memlayer (Instructor JSON_SCHEMA mode)
        content = {"operations": [{"op": "add", "memory": f, "topics": ["profile"], "reason": "said"} for f in todo]}
    elif fmt.get("type") == "json_object" and "Memory Extractor" in str(messages[0]["content"]):  # mem0 v3
        content = {"memory": [{"id": str(k), "text": f} for k, f in enumerate(todo)]}
    else:
        raise ValueError(f"unscripted request: response_format={fmt}, tools={tools}")
    return {"role": "assistant", "content": json.dumps(content)}


def chat_reply(body: dict[str, Any], todo: list[str]) -> dict[str, Any]:
    if body.get("stream"):
        raise ValueError("streaming is not scripted")
    msg = assistant(body, todo)
    finish = "tool_calls" if msg.get("tool_calls") else "stop"
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"), "system_fingerprint": "scripted",
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip


def prompt_text(body: dict[str, Any]) -> str:
    parts = []
    for m in body.get("messages", []):
        content = m.get("content")
        parts.append(content if isinstance(content, str) else json.dumps(content) if content else "")
        if m.get("tool_calls"):
            parts.append(json.dumps(m["tool_calls"]))
    parts += [json.dumps(body[k]) for k in ("tools", "response_format") if body.get(k)]
    return "\n".join(parts)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dim: int, reply: Callable[[dict[str, Any], list[str]], dict[str, Any]] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.dim, self.todo, self.log, self.lock = dim, [], [], threading.Lock()
        self.reply = reply or chat_reply  # benchmarks/peers_background.py answers chat turns and delays extractions
        self.inflight = 0  # requests answered but not yet logged: a reader of the log waits for them
        self.count = token_counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def records(self, since: int) -> list[dict[str, Any]]:
        while self.inflight:
            time.sleep(0.001)
        with self.lock:
            records = self.log[since:]
        for r in records:
            if "text" in r:
                r["tokens"] = self.count(r.pop("text"))
        return records


def token_counter() -> Callable[[str], int]:
    """tiktoken o200k_base from LiteLLM's bundled file when present; else about 4 characters a token."""
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations and importlib.util.find_spec("tiktoken"):
        tokenizers = Path(next(iter(spec.submodule_search_locations)), "litellm_core_utils", "tokenizers")
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tokenizers))
        import tiktoken

        encoding = tiktoken.get_encoding("o200k_base")
        return lambda text: len(encoding.encode(text, disallowed_special=()))
    return lambda text: len(text) // 4


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body go out in two segments and a client waits ~40 ms
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.send(200, self.server.records(int(self.path.partition("since=")[2] or 0)))

    def do_POST(self) -> None:
        started = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = self.path.split("?")[0]
        if path.endswith("/_script"):
            self.server.todo = body["facts"]
            return self.send(200, {})
        kind = "embed" if path.endswith("/embeddings") else "chat"
        with self.server.lock:
            self.server.inflight += 1
        try:
            todo = self.server.todo
            reply = embeddings_reply(body, self.server.dim) if kind == "embed" else self.server.reply(body, todo)
            self.send(200, reply)
        except (ValueError, KeyError) as exc:
            self.send(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
        record = {"kind": kind, "start": started, "end": time.monotonic()}
        if kind == "chat":
            record["text"] = prompt_text(body)
        with self.server.lock:
            self.server.log.append(record)
            self.server.inflight -= 1


# ---------------------------------------------------------------- the three libraries (worker processes)


def import_entry(lib: str) -> None:
    """The memory entry point each library's docs start from."""
    if lib == "memlayer":
        from memlayer import DuckDb, MemoryManager  # noqa: F401
    elif lib == "agno":
        from agno.db.sqlite import SqliteDb  # noqa: F401
        from agno.memory import MemoryManager  # noqa: F401
        from agno.models.openai import OpenAIChat  # noqa: F401
    else:
        from mem0 import Memory  # noqa: F401


class Memlayer:
    def __init__(self, url: str, tmp: Path) -> None:
        from memlayer import DuckDb, MemoryManager
        from memlayer._internal.search.embedders import LiteLLMEmbedder

        self.db = DuckDb(db_file=str(tmp / "memlayer.duckdb"))
        embedder: Any = os.environ["PEERS_MEMLAYER_EMBEDDER"]  # "server", or memlayer's own "lexical", "local"
        if embedder == "server":
            embedder = LiteLLMEmbedder("openai/text-embedding-3-small", api_base=url, api_key=KEY)
        self.m = MemoryManager(model="openai/gpt-4o-mini", db=self.db, api_base=url, api_key=KEY, embedder=embedder)

    def extract(self, i: int) -> None:
        self.m.create_user_memories(message(i), user_id=USER)

    def add(self, text: str) -> None:
        self.m.add_user_memory(text, user_id=USER, topics=["seed"])

    def search(self, q: str) -> int:
        return len(self.m.search_user_memories(q, user_id=USER, limit=10))

    def count(self) -> int:
        return len(self.m.get_user_memories(user_id=USER))


class Agno:
    def __init__(self, url: str, tmp: Path) -> None:
        from agno.db.sqlite import SqliteDb
        from agno.memory import MemoryManager
        from agno.models.openai import OpenAIChat

        self.db = SqliteDb(db_file=str(tmp / "agno.db"))
        self.m = MemoryManager(model=OpenAIChat(id="gpt-4o-mini", base_url=url, api_key=KEY), db=self.db)

    def extract(self, i: int) -> None:
        self.m.create_user_memories(message=message(i), user_id=USER)

    def add(self, text: str) -> None:
        from agno.db.schemas import UserMemory

        self.m.add_user_memory(UserMemory(memory=text, topics=["seed"]), user_id=USER)

    def search(self, q: str) -> int:
        return len(self.m.search_user_memories(q, limit=10, retrieval_method="agentic", user_id=USER))

    def count(self) -> int:
        return len(self.db.get_user_memories(user_id=USER))


class Mem0:
    def __init__(self, url: str, tmp: Path) -> None:
        from mem0 import Memory

        dim = int(os.environ["PEERS_DIM"])
        self.m = Memory.from_config({
            "llm": {"provider": "openai", "config": {"model": "gpt-4o-mini", "openai_base_url": url, "api_key": KEY}},
            "embedder": {"provider": "openai", "config": {"model": "text-embedding-3-small", "openai_base_url": url,
                                                          "api_key": KEY, "embedding_dims": dim}},
            "vector_store": {"provider": "qdrant",
                             "config": {"path": str(tmp / "qdrant"), "embedding_model_dims": dim}},
            "history_db_path": str(tmp / "history.db"),
        })  # fmt: skip

    def extract(self, i: int) -> None:
        self.m.add([{"role": "user", "content": message(i)}], user_id=USER)

    def add(self, text: str) -> None:
        self.m.add([{"role": "user", "content": text}], user_id=USER, infer=False)

    def search(self, q: str) -> int:
        return len(self.m.search(q, filters={"user_id": USER}, top_k=10)["results"])

    def count(self) -> int:
        return len(self.m.get_all(filters={"user_id": USER}, top_k=1_000_000)["results"])


RUNNERS: dict[str, Any] = {"memlayer": Memlayer, "agno": Agno, "mem0": Mem0}


class Probe:
    """Timed windows on the monotonic clock, matched afterwards with the server's log of requests."""

    def __init__(self, url: str) -> None:
        self.url, self.windows = url, []
        self.mark = len(self.log(0))

    def log(self, since: int) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/_log?since={since}") as response:
            return json.load(response)  # type: ignore[no-any-return]

    def script(self, todo: list[str]) -> None:
        req = urllib.request.Request(f"{self.url}/_script", json.dumps({"facts": todo}).encode(), method="POST")
        urllib.request.urlopen(req).close()

    def time(self, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.monotonic()
        out = fn(*args)
        self.windows.append((started, time.monotonic()))
        return out

    def results(self) -> list[dict[str, float]]:
        """Per window: wall and server seconds, net = wall - server, chat and embedding calls, prompt tokens."""
        records, out = self.log(self.mark), []
        for start, end in self.windows:
            inside = [r for r in records if r["start"] < end and r["end"] > start]
            server = sum(min(end, r["end"]) - max(start, r["start"]) for r in inside)
            chats = [r for r in inside if r["kind"] == "chat"]
            out.append({"wall": end - start, "server": server, "net": end - start - server, "chat": len(chats),
                        "embed": len(inside) - len(chats), "tokens": sum(r["tokens"] for r in chats)})  # fmt: skip
        self.mark, self.windows = self.mark + len(records), []
        return out


def task_fresh(lib: str, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A fresh process: import, build on a new store, the first extraction (its server time taken out)."""
    t0 = time.monotonic()
    import_entry(lib)
    t1 = time.monotonic()
    runner = RUNNERS[lib](url, tmp)
    t2 = time.monotonic()
    probe = Probe(url)
    probe.script(facts(0))
    probe.time(runner.extract, 0)
    [first] = probe.results()
    stored = runner.count()
    assert stored == 2, f"{lib}: the first extraction stored {stored} memories, expected 2"
    return {"import": t1 - t0, "build": t2 - t1, "first": first["net"], "cold": t2 - t0 + first["net"],
            "chat": first["chat"], "stored": stored}  # fmt: skip


def task_steady(lib: str, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Extractions after a warm-up, on a user holding ``--size`` memories seeded by direct add."""
    runner = RUNNERS[lib](url, tmp)
    started = time.monotonic()
    for i in range(args.size):
        runner.add(seed_text(i))
    seeded, probe, total = time.monotonic() - started, Probe(url), args.warmup + args.runs
    for i in range(total):
        probe.script(facts(args.size + i))
        probe.time(runner.extract, args.size + i)
    res = probe.results()[args.warmup :]
    stored = runner.count()
    assert stored == args.size + 2 * total, f"{lib}: {stored} memories, expected {args.size} + 2 x {total}"
    return {**{k: [r[k] for r in res] for k in ("net", "chat", "embed", "tokens")}, "stored": stored, "seed_s": seeded}


def task_addsearch(lib: str, url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``--size`` direct adds, each timed, then searches of that user (embedding or LLM time taken out)."""
    runner, probe = RUNNERS[lib](url, tmp), Probe(url)
    for i in range(args.size):
        probe.time(runner.add, seed_text(i))
    adds = probe.results()
    stored = runner.count()
    assert stored == args.size, f"{lib}: {stored} memories after {args.size} adds"
    hits = [probe.time(runner.search, query(i)) for i in range(args.warmup + args.runs)][args.warmup :]
    res = probe.results()[args.warmup :]
    assert min(hits) > 0, f"{lib}: a search found nothing: {hits}"
    searches = {f"search_{k}": [r[k] for r in res] for k in ("net", "chat", "embed", "tokens")}
    return {"add": [r["net"] for r in adds], "add_embed": [r["embed"] for r in adds], "stored": stored,
            "hits": hits, **searches}  # fmt: skip


TASKS = {"fresh": task_fresh, "steady": task_steady, "addsearch": task_addsearch}


def worker(args: argparse.Namespace) -> None:
    logging_quiet()
    with tempfile.TemporaryDirectory(prefix=f"peers-{args.worker}-") as tmp:
        os.environ["MEM0_DIR"] = str(Path(tmp, "mem0-home"))
        result = TASKS[args.task](args.worker, args.url, Path(tmp), args)
    print(json.dumps(result))


def logging_quiet() -> None:
    import logging
    import warnings

    logging.disable(logging.WARNING)  # mem0 warns that spaCy is absent, on every add
    warnings.filterwarnings("ignore")


# ---------------------------------------------------------------- the parent: server, workers, table

IMPORT_PROBE = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
IMPORTS = {
    "memlayer": "from memlayer import DuckDb, MemoryManager",
    "agno": "from agno.memory import MemoryManager; from agno.db.sqlite import SqliteDb; "
    "from agno.models.openai import OpenAIChat",
    "mem0": "from mem0 import Memory",
}


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    return {**os.environ, "MEM0_TELEMETRY": "False", "AGNO_TELEMETRY": "false", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "OPENAI_API_KEY": KEY, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "PEERS_DIM": str(args.dim), "PEERS_MEMLAYER_EMBEDDER": args.memlayer_embedder,
            "PYTHONWARNINGS": "ignore"}  # fmt: skip


def python_for(lib: str, args: argparse.Namespace) -> str:
    return str(args.memlayer_python if lib == "memlayer" else args.peers_python)


def run(lib: str, cmd: list[str], args: argparse.Namespace) -> Any:
    """One subprocess; its last line of output, as JSON. A failure is returned as its reason."""
    proc = subprocess.run([python_for(lib, args), *cmd], capture_output=True, text=True, env=worker_env(args))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"error": lines[-1][:160] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def task(lib: str, name: str, url: str, args: argparse.Namespace, **options: int) -> dict[str, Any]:
    opts = {"warmup": args.warmup, "runs": args.steady, **options}
    cmd = [__file__, "--worker", lib, "--task", name, "--url", url, *[f"--{k}={v}" for k, v in opts.items()]]
    print(f"  {lib:9} {name} {options or ''}", file=sys.stderr, flush=True)
    return run(lib, cmd, args)  # type: ignore[no-any-return]


def measure(lib: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    imports = [run(lib, ["-c", IMPORT_PROBE.format(IMPORTS[lib])], args) for _ in range(args.runs)]
    out: dict[str, Any] = {"import": imports}
    out["fresh"] = [task(lib, "fresh", url, args) for _ in range(args.runs)]
    out["steady"] = task(lib, "steady", url, args, size=args.small)
    if args.big:
        out["big"] = task(lib, "steady", url, args, size=args.big)
    out["addsearch"] = task(lib, "addsearch", url, args, size=args.search_size)
    return out


class NA(Exception):
    """A cell a library could not fill, with the reason."""


def part(r: dict[str, Any], key: str) -> Any:
    v = r.get(key)
    errors = [x["error"] for x in (v if isinstance(v, list) else [v]) if isinstance(x, dict) and "error" in x]
    if v is None or errors:
        raise NA(errors[0] if errors else "not run")
    return v


def p50(xs: Any) -> float:
    return float(statistics.median(list(xs)))


def rows(args: argparse.Namespace) -> list[tuple[str, Callable[[dict[str, Any]], float]]]:
    def fresh(key: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: p50(f[key] for f in part(r, "fresh")) * 1e3

    def of(key: str, field: str, scale: float = 1.0) -> Callable[[dict[str, Any]], float]:
        return lambda r: p50(part(r, key)[field]) * scale

    return [
        ("import of the memory entry point, ms", lambda r: p50(part(r, "import")) * 1e3),
        ("build the memory object on a new store, ms", fresh("build")),
        ("first extraction in a fresh process, ms", fresh("first")),
        ("cold start: import + build + first extraction, ms", fresh("cold")),
        (f"extraction, steady, {args.small} memories, ms", of("steady", "net", 1e3)),
        (f"extraction, steady, {args.big} memories, ms", of("big", "net", 1e3)),
        ("direct add, no LLM, per memory, ms", of("addsearch", "add", 1e3)),
        (f"search, {args.search_size} memories, ms", of("addsearch", "search_net", 1e3)),
        ("LLM calls per extraction", of("steady", "chat")),
        ("embedding calls per extraction", of("steady", "embed")),
        (f"prompt tokens per extraction, {args.small} memories", of("steady", "tokens")),
        (f"prompt tokens per extraction, {args.big} memories", of("big", "tokens")),
        ("LLM calls per search", of("addsearch", "search_chat")),
        (f"prompt tokens per search, {args.search_size} memories", of("addsearch", "search_tokens")),
    ]


def cell(r: dict[str, Any], fn: Callable[[dict[str, Any]], float]) -> float | str:
    try:
        return fn(r)
    except NA as exc:
        return f"n/a: {exc}"


def ratio(values: dict[str, float | str]) -> str:
    peers = [v for lib, v in values.items() if lib != "memlayer" and isinstance(v, float)]
    mine = values.get("memlayer")
    if not isinstance(mine, float) or not peers:
        return ""
    return f"{mine / min(peers):.2f}x" if min(peers) > 0 else ("=" if mine == 0 else "")


def fmt(v: float | str) -> str:
    if isinstance(v, str):
        return v if len(v) <= 30 else v[:29] + "…"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 or v == int(v) else f"{v:.2f}"


def table(results: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for label, fn in rows(args):
        values = {lib: cell(results[lib], fn) for lib in results}
        out.append({"row": label, **values, "memlayer / best peer": ratio(values)})
    return out


def print_table(table_rows: list[dict[str, Any]], libs: list[str]) -> None:
    head = ["", *libs, "memlayer / best peer"]
    widths = [max(len(fmt(r.get(h, "")) if h else r["row"]) for r in table_rows) for h in head]
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True))))
    for r in table_rows:
        cells = [r["row"], *[fmt(r[lib]) for lib in libs], r["memlayer / best peer"]]
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))))
    reasons = {r[lib] for r in table_rows for lib in libs if isinstance(r[lib], str) and len(r[lib]) > 30}
    for reason in sorted(reasons):
        print(f"  {reason}")


NOTES = """notes:
  a time is wall time minus the server's time for the requests inside it: HTTP client, parsing, store, glue stay in
  import: a fresh `python -c`, the import statement alone; cold start: import, build, first extraction in one process
  steady: the user starts with that many memories (direct adds) and gains 2 per extraction (the same 2 facts for all)
  direct add: memlayer add_user_memory, Agno MemoryManager.add_user_memory, mem0 add(infer=False); search: memlayer
  hybrid search, mem0 search (both embed the query on the server), Agno agentic search (one LLM call, every memory)"""


def checks(results: dict[str, Any]) -> list[str]:
    """What each library really stored and found, so a row where one did nothing shows."""
    lines = []
    for lib, r in results.items():
        got = []
        for key, what in (("steady", "steady"), ("big", "big"), ("addsearch", "after direct adds")):
            v = r.get(key)
            if isinstance(v, dict) and "stored" in v:
                got.append(f"{what}: {v['stored']} stored")
        fresh = [f["stored"] for f in r.get("fresh", []) if "stored" in f]
        search = r.get("addsearch") or {}
        hits = f"search hits p50 {p50(search['hits']):.0f}" if "hits" in search else "no search"
        lines.append(f"  {lib}: first extraction stored {fresh}; " + "; ".join(got) + f"; {hits}")
    return lines


def versions(args: argparse.Namespace) -> dict[str, str]:
    code = "import json; from importlib.metadata import version; print(json.dumps(version({!r})))"
    dists = {"memlayer": "memlayer-ai", "agno": "agno", "mem0": "mem0ai"}
    return {lib: str(run(lib, ["-c", code.format(dists[lib])], args)) for lib in args.libs}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers-python", default=sys.executable, help="interpreter with agno and mem0ai")
    p.add_argument("--memlayer-python", default=sys.executable, help="interpreter with memlayer")
    p.add_argument("--libs", type=lambda s: s.split(","), default=list(LIBS))
    p.add_argument("--runs", type=int, default=5, help="fresh processes per library (import, first extraction)")
    p.add_argument("--steady", type=int, default=20, help="timed extractions / searches after the warm-up")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--small", type=int, default=10, help="memories of the user for the small steady state")
    p.add_argument("--big", type=int, default=10_000, help="memories of the user for the large one (0: skip)")
    p.add_argument("--search-size", type=int, default=1000, help="memories added directly, then searched")
    p.add_argument("--dim", type=int, default=384, help="embedding dimension the server returns")
    p.add_argument("--memlayer-embedder", default="server", choices=["server", "lexical", "local"],
                   help="server: LiteLLMEmbedder on the scripted server, like mem0; or memlayer's own")  # fmt: skip
    p.add_argument("--json", metavar="PATH", help="also write rows and raw samples as JSON (-: instead of the table)")
    p.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    p.add_argument("--task", choices=list(TASKS), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse()
    if args.worker:
        return worker(args)
    server = Server(args.dim)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"scripted server at {server.url}; workers: {args.memlayer_python} (memlayer), {args.peers_python} (peers)",
          file=sys.stderr)  # fmt: skip
    load = os.getloadavg()[0]
    try:
        info, results = versions(args), {lib: measure(lib, server.url, args) for lib in args.libs}
    finally:
        server.shutdown()
    out, load = table(results, args), f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    doc = json.dumps({"versions": info, "load": load, "args": vars(args), "rows": out, "raw": results}, indent=1)
    if args.json == "-":
        return print(doc)
    if args.json:
        Path(args.json).write_text(doc)
    print(f"memlayer vs peers, same scripted server, server time subtracted; p50 of {args.runs} fresh processes"
          f" / {args.steady} runs after {args.warmup} warm-up; {args.dim}-d embeddings; memlayer embedder:"
          f" {args.memlayer_embedder}; {load} ({os.cpu_count()} cores)")  # fmt: skip
    print("versions: " + ", ".join(f"{lib} {v}" for lib, v in info.items()) + "\n")
    print_table(out, args.libs)
    print(NOTES)
    print("\nchecks (memories stored / found by each library):")
    print("\n".join(checks(results)))


if __name__ == "__main__":
    main()
