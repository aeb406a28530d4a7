"""LocalStore specifics: the kernel-copy fast path and its read/write fallback give the same objects."""

from __future__ import annotations

import hashlib
import os
import threading

from generators.storage import LocalStore


async def test_store_from_a_pipe_uses_the_fallback_copy(tmp_path):
    # copy_file_range refuses a FIFO, so this exercises the plain read/write path end to end.
    data = os.urandom(3 * 1024 * 1024 + 17)
    fifo = tmp_path / "incoming.fifo"
    os.mkfifo(fifo)

    def feed():
        with fifo.open("wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    store = LocalStore(tmp_path / "store")
    stored = await store.put_file(fifo, "bin")
    writer.join(timeout=30)

    assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size_bytes == len(data)
    assert store.local_path(stored.key).read_bytes() == data
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


async def test_empty_file_is_stored(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    store = LocalStore(tmp_path / "store")
    stored = await store.put_file(empty, "txt")
    assert stored.sha256 == hashlib.sha256(b"").hexdigest() and stored.size_bytes == 0
    assert store.local_path(stored.key).read_bytes() == b""
