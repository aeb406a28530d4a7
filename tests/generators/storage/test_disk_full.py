"""A store on a real, tiny file system (tmpfs) filling up mid-write: nothing half-made stays; errors say what to do."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from generators.context import GeneratorContext
from generators.errors import StorageError
from generators.storage import LocalStore

KiB = 1024
PAGE = 4096  # tmpfs hands out space in pages


@pytest.fixture
def small_disk(tmp_path):
    """Mount a fresh tmpfs of the given size in KiB; unmounted after the test."""
    mounted: list[Path] = []

    def mount(size_kib: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int = 0) -> None:
    """Use up the file system at `disk` until only `leave` bytes (a multiple of a page) are free."""
    free = shutil.disk_usage(disk).free
    with (disk / "filler").open("ab") as fh:
        fh.write(b"\0" * (free - leave))
    assert shutil.disk_usage(disk).free == leave


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "filler")


def assert_names_path_and_space(exc: StorageError, path_part: str) -> None:
    text = f"{exc.message} {exc.hint}"
    assert "No space left" in exc.message and path_part in exc.message, exc.message
    assert "free" in text and "needs" in exc.message, text
    assert "BOARDFLOW_STORE" in (exc.hint or ""), exc.hint
    assert isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.ENOSPC


async def test_an_object_bigger_than_the_free_space_leaves_nothing(small_disk, tmp_path):
    disk = small_disk(256)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(1024 * KiB))
    store = LocalStore(disk / "store")

    with pytest.raises(StorageError) as caught:
        await store.put_file(src, "bin")

    assert_names_path_and_space(caught.value, str(disk / "store"))
    assert "1.0 MiB" in caught.value.message  # what the write needed
    assert leftovers(disk) == [], "a failed write left a file behind"
    assert shutil.disk_usage(disk).free == 256 * KiB, "space was not given back"


@pytest.mark.parametrize("how", ["write_json", "create_json"])
async def test_a_json_write_on_a_full_disk_leaves_no_temp_file(small_disk, how):
    disk = small_disk(64)
    store = LocalStore(disk / "store")
    await store.write_json("objects/ab/earlier.json", {"fits": True})
    fill(disk)

    with pytest.raises(StorageError) as caught:
        await getattr(store, how)("objects/ab/abcdef.json", {"big": "x" * 10_000})

    assert_names_path_and_space(caught.value, "objects/ab/abcdef.json")
    assert leftovers(disk) == ["store/objects/ab/earlier.json"], "a .tmp- file stayed beside the sidecars"
    assert await store.list_keys("objects") == ["objects/ab/earlier.json"]


def noisy_png(path: Path) -> Path:
    Image.frombytes("RGB", (96, 96), os.urandom(96 * 96 * 3)).save(path, "PNG")
    return path


async def test_an_object_is_never_kept_without_its_sidecar(small_disk, tmp_path):
    disk = small_disk(256)
    store = LocalStore(disk / "store")
    png = noisy_png(tmp_path / "still.png")
    # Room for the image's bytes and not one page more: the object lands, then its sidecar cannot.
    fill(disk, leave=-(-png.stat().st_size // PAGE) * PAGE)

    async with GeneratorContext(store, run_id="full-disk") as ctx:
        with pytest.raises(StorageError) as caught:
            await ctx.store_image_result(png)

    assert_names_path_and_space(caught.value, "objects/")
    assert leftovers(disk) == [], "an object stayed without its sidecar (or a temp file stayed)"

    (disk / "filler").unlink()  # space again: the same image stores whole, with its sidecar
    async with GeneratorContext(store, run_id="after") as ctx:
        image = await ctx.store_image_result(png)
    assert (await store.read_json(f"objects/{image.sha256[:2]}/{image.sha256}.json"))["width"] == 96


async def test_bytes_stored_onto_a_full_disk_fail_cleanly(small_disk):
    """Bytes handed over in memory take the same path: a named error, nothing left in the store."""
    disk = small_disk(64)
    store = LocalStore(disk / "store")
    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buf, "PNG")
    fill(disk)

    async with GeneratorContext(store) as ctx:
        with pytest.raises(StorageError) as caught:
            await ctx.store_image_result(buf.getvalue())
    assert "No space left" in caught.value.message
    assert leftovers(disk) == []
