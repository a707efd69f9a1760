"""DuckDB under faults: a full disk, a file size limit, a read-only file system, a file held by another
process. Each gives a clear `StorageError` that says what to do, writes nothing, and afterwards the
file opens and holds every acknowledged write exactly once.

The full disk is a real 512 KiB tmpfs mounted by the test where mounting is allowed (root with
CAP_SYS_ADMIN, as in this project's containers), and in any case a real ``RLIMIT_FSIZE`` in a child
process. Read-only is a read-only bind mount where mounting is allowed; as another user, file modes
(root ignores those, so it is skipped there only when it cannot mount either).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from memlayer import DatabaseLockedError, DuckDb, MemoryManager, StorageError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmpfs, bind mounts and RLIMIT_FSIZE are Linux's")


def _text(i: int) -> str:
    return f"Fact number {i}: " + " ".join(["a long enough sentence to fill the disk sooner"] * 4)


def _stored(path: Path, *, read_only: bool = False) -> list[str]:
    """Every current memory of ``ana`` in the file, opened afresh (the open itself is the first check)."""
    with DuckDb(path, read_only=read_only) as db:
        return [m.memory for m in MemoryManager(db=db).get_user_memories("ana", limit=100_000)]


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@contextmanager
def _mounted(*args: str, at: Path) -> Iterator[bool]:
    """``mount ARGS at`` for the block; yields False when this process may not mount."""
    at.mkdir(exist_ok=True)
    mounted = os.geteuid() == 0 and _mount(*args, str(at))
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(at)], check=False)


def _fill(manager: MemoryManager, acked: list[str], limit: int = 5000) -> StorageError:
    for i in range(len(acked), limit):
        try:
            manager.add_user_memory(_text(i), user_id="ana")
        except StorageError as exc:
            return exc
        acked.append(_text(i))
    raise AssertionError(f"{limit} writes and the disk is still not full")


def test_a_full_disk_refuses_the_write_keeps_everything_and_recovers_when_space_is_freed(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with _mounted("-t", "tmpfs", "-o", "size=512k", "tmpfs", at=disk) as mounted:
        if not mounted:
            pytest.skip("this process may not mount a tmpfs; the RLIMIT_FSIZE test below covers a full disk")
        path, acked = disk / "m.duckdb", []
        with DuckDb(path) as db:
            manager = MemoryManager(db=db)
            full = _fill(manager, acked)
            assert "the disk is full" in str(full) and "nothing was written: free space, then retry" in str(full)
            assert "No space left on device" in str(full)
            assert len(manager.get_user_memories("ana", limit=100_000)) == len(acked) > 50  # reads still work
            assert _mount("-o", "remount,size=16m", str(disk))  # space is freed
            manager.add_user_memory("After the disk was full", user_id="ana")  # the same store writes again
        stored = _stored(path)
        assert sorted(stored) == sorted([*acked, "After the disk was full"])  # all there, each once


CHILD = """
import json, resource, signal, sys
from memlayer import DuckDb, MemoryManager, StorageError
path, headroom = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
acked, error = [], None
with DuckDb(path) as db:
    manager = MemoryManager(db=db)
    # From here no file may be written past `headroom` bytes: the WAL, where each commit goes, fills up.
    resource.setrlimit(resource.RLIMIT_FSIZE, (headroom, headroom))
    for i in range(100, 5000):
        text = f"Fact number {i}: " + " ".join(["a long enough sentence to fill the disk sooner"] * 4)
        try:
            manager.add_user_memory(text, user_id="ana")
        except StorageError as exc:
            error = str(exc)
            break
        acked.append(text)
    print(json.dumps({"acked": acked, "error": error}), flush=True)
    try:
        db.close()  # the checkpoint may not fit under the limit either: the WAL keeps what it holds
    except StorageError:
        pass
"""


def test_a_file_size_limit_in_a_child_process_loses_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with DuckDb(path) as db:
        before = [MemoryManager(db=db).add_user_memory(_text(i), user_id="ana").memory for i in range(100)]
    headroom = 96 * 1024
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(headroom)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    child = json.loads(run.stdout)
    assert child["error"] and "the disk is full (or a file size limit was reached)" in child["error"]
    assert "File too large" in child["error"] and len(child["acked"]) > 10
    assert sorted(_stored(path)) == sorted(before + child["acked"])


def test_a_read_only_file_system_refuses_writes_clearly_and_reads_everything(tmp_path: Path) -> None:
    # Read-only from the start (a read-only volume): Linux refuses to remount a file system read-only while
    # a file on it is open for writing, so a store cannot see its disk turn read-only under it.
    data, view = tmp_path / "data", tmp_path / "view"
    with DuckDb(data / "m.duckdb") as db:
        acked = [MemoryManager(db=db).add_user_memory(_text(i), user_id="ana").memory for i in range(20)]
    with _mounted("--bind", str(data), at=view) as mounted:
        if not mounted:
            pytest.skip("this process may not mount; a read-only file as another user is the next test")
        assert _mount("-o", "remount,bind,ro", str(view))
        path = view / "m.duckdb"
        with pytest.raises(StorageError, match=r"for writing: .* not writable .* read_only=True"):
            DuckDb(path)
        assert sorted(_stored(path, read_only=True)) == sorted(acked)
        assert sorted(_stored(data / "m.duckdb")) == sorted(acked)  # and the refused open changed nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes; the bind mount test covers root")
def test_a_read_only_file_opens_read_only_with_everything(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    with DuckDb(path) as db:
        acked = [MemoryManager(db=db).add_user_memory(_text(i), user_id="ana").memory for i in range(20)]
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StorageError, match=r"for writing: .* not writable .* read_only=True"):
            DuckDb(path)
        assert sorted(_stored(path, read_only=True)) == sorted(acked)
    finally:
        tmp_path.chmod(0o755)


HOLDER = """
import sys
from memlayer import DuckDb, MemoryManager
with DuckDb(sys.argv[1]) as db:
    manager = MemoryManager(db=db)
    for i in range(100_000):
        manager.add_user_memory(f"Held fact {i}", user_id="ana")
        print(f"Held fact {i}", flush=True)  # printed only once acknowledged
"""


def test_a_file_held_by_another_process_is_refused_and_whole_after_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    DuckDb(path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    acked = [holder.stdout.readline().strip() for _ in range(20)]  # it is writing
    with pytest.raises(DatabaseLockedError, match=f"locked by another process \\(PID {holder.pid}"):
        DuckDb(path)
    holder.send_signal(signal.SIGKILL)  # mid-write, as a crash would
    rest, _ = holder.communicate(timeout=30)
    acked += [line for line in rest.splitlines() if line]
    stored = _stored(path)
    assert len(stored) == len(set(stored))
    assert set(acked) <= set(stored) and len(set(stored) - set(acked)) <= 1  # at most the one in flight
