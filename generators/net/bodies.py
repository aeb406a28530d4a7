"""Response bodies read under a byte cap: decoded here, in bounded steps, never by httpx in one go.

httpx inflates a whole network chunk per call, and a stack of encodings (`gzip, gzip`) multiplies that
before any size check can run: 1.8 kB became 1 GiB. Here a request asks for `identity`; a server that
compresses anyway may use one gzip or deflate layer, inflated at most STEP bytes at a time and counted
against the cap; anything else is refused. Peak memory is one STEP plus zlib's window, at any cap.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx

from ..errors import BoardflowError, InputError, UnsafeURLError, shorten

STEP = 256 * 1024  # the most bytes held at once: one raw chunk or one inflated piece
IDENTITY = {"Accept-Encoding": "identity"}  # downloads and audio: nothing to decode
DECODABLE = {"Accept-Encoding": "gzip, deflate"}  # API answers (JSON): what decoded_chunks inflates, and no more
_INFLATABLE = {"gzip", "x-gzip", "deflate"}

TooBig = Callable[[], BoardflowError]


def encodings(response: httpx.Response) -> list[str]:
    """The Content-Encoding layers, outermost last, without `identity`."""
    raw = ",".join(response.headers.get_list("content-encoding"))
    return [e.strip().lower() for e in raw.split(",") if e.strip() and e.strip().lower() != "identity"]


class _Inflater:
    """One gzip or deflate layer, inflated in pieces of at most STEP bytes (gzip members may follow each other)."""

    def __init__(self, encoding: str, url: str) -> None:
        self.encoding = encoding
        self.url = url
        self._unzip: zlib._Decompress | None = None

    def _start(self, first: bytes) -> zlib._Decompress:
        if self.encoding != "deflate":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped, but some servers send a raw stream: the header tells which.
        wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._unzip is None:
                if not data:
                    return
                self._unzip = self._start(data)
            try:
                piece = self._unzip.decompress(data, STEP)
            except zlib.error as exc:
                raise self._damaged(f"is not valid {self.encoding} data ({exc})") from None
            data = self._unzip.unconsumed_tail
            if piece:
                yield piece
            if self._unzip.eof:
                # A next gzip member starts afresh; bytes after a deflate stream are ignored.
                data = self._unzip.unused_data if self.encoding != "deflate" else b""
                self._unzip = None
            elif not data and len(piece) < STEP:
                return  # all input taken and zlib holds nothing back (a full piece may mean it does: ask again)

    def finish(self) -> None:
        if self._unzip is not None:
            raise self._damaged(f"ends before its {self.encoding} stream does")

    def _damaged(self, what: str) -> InputError:
        return InputError(
            f"Download of {shorten(self.url)} {what}.",
            hint="Download it again; if this persists, the server sends damaged files.",
        )


async def decoded_chunks(response: httpx.Response, url: str, limit: int, too_big: TooBig) -> AsyncIterator[bytes]:
    """The body's bytes as sent before encoding, each chunk at most STEP; raises `too_big()` past `limit`.

    Both the bytes on the wire and the decoded bytes count against `limit`, so neither an endless
    stream after a gzip trailer nor a bomb gets further than the cap.
    """
    if response.is_stream_consumed:  # a transport that handed the body over in memory (httpx.MockTransport)
        if len(response.content) > limit:
            raise too_big()
        for start in range(0, len(response.content), STEP):
            yield response.content[start : start + STEP]
        return
    layers = encodings(response)
    if len(layers) > 1:
        raise UnsafeURLError(
            f"Refusing {shorten(url)}: it is sent with stacked encodings ({', '.join(layers)}).",
            hint="Serve the file unencoded (downloads ask for Accept-Encoding: identity) or with one gzip layer.",
        )
    if layers and layers[0] not in _INFLATABLE:
        raise UnsafeURLError(
            f"Refusing {shorten(url)}: it is sent with Content-Encoding {layers[0]!r}, which downloads do not decode.",
            hint="Serve the file unencoded (downloads ask for Accept-Encoding: identity), or gzip or deflate.",
        )
    inflater = _Inflater(layers[0], url) if layers else None
    wire = decoded = 0
    async for raw in response.aiter_raw(STEP):
        wire += len(raw)
        if wire > limit:
            raise too_big()
        for piece in inflater.feed(raw) if inflater else (raw,):
            decoded += len(piece)
            if decoded > limit:
                raise too_big()
            yield piece
    if inflater:
        inflater.finish()


async def save_body(response: httpx.Response, url: str, dest: Path, limit: int, too_big: TooBig) -> tuple[str, int]:
    """Stream the decoded body into `dest` atomically (nothing is left behind on error); (sha256, size)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in decoded_chunks(response, url, limit, too_big):
                size += len(chunk)
                digest.update(chunk)
                fh.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size
