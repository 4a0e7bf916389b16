"""A response body read under the cap: counted as it is decompressed, after decompression,
so a gzip bomb is cut off early."""

from __future__ import annotations

import zlib

import httpx

from digest.config.models import GatherConfig, default
from digest.errors import SourceError

MAX_BODY_BYTES = int(default(GatherConfig, "max_body_mb") * 1024 * 1024)


async def read_capped(
    name: str, url: str, response: httpx.Response, encoding: str, cap: int
) -> bytes:
    """The decoded body, counted as it is decompressed; SourceError past ``cap`` bytes."""
    decoder = _Decoder(name, url, encoding)
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for piece in decoder.feed(raw, cap - size + 1):
            size += len(piece)
            if size > cap:
                raise too_large(name, f"the response from {url} went past the limit", cap)
            chunks.append(piece)
    tail = decoder.flush()
    if size + len(tail) > cap:
        raise too_large(name, f"the response from {url} went past the limit", cap)
    chunks.append(tail)
    return b"".join(chunks)


class _Decoder:
    """Content-Encoding undone with a bound on each step's output (zlib's max_length)."""

    def __init__(self, name: str, url: str, encoding: str) -> None:
        self.name, self.url = name, url
        coding = encoding.strip().lower()
        self.zlib: zlib._Decompress | None
        if coding in ("", "identity"):
            self.zlib = None
        elif coding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)
        else:
            raise SourceError(
                name,
                f"{url} sent a body in an encoding we did not ask for ({encoding!r})",
                "the server ignores Accept-Encoding; report it to the site",
            )

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """Decoded pieces of ``data``; stops once ``room`` bytes are out (the cap is hit)."""
        if self.zlib is None:
            return [data]
        out: list[bytes] = []
        try:
            while data and room > 0:
                piece = self.zlib.decompress(data, room)
                out.append(piece)
                room -= len(piece)
                data = self.zlib.unconsumed_tail
        except zlib.error as exc:
            raise self._broken(exc) from exc
        return out

    def flush(self) -> bytes:
        """What the decompressor still holds at the end of the body."""
        if self.zlib is None:
            return b""
        try:
            return self.zlib.flush()
        except zlib.error as exc:
            raise self._broken(exc) from exc

    def _broken(self, exc: zlib.error) -> SourceError:
        return SourceError(
            self.name,
            f"could not decompress the response from {self.url}: {exc}",
            "the server sends a broken compressed body; report it to the site",
        )


def too_large(name: str, what: str, cap: int) -> SourceError:
    """The error for a body past the cap: what was too big, and the cap."""
    return SourceError(
        name,
        f"{what}; cut off: a response may be {size_text(cap)} at most",
        "check that url points at a feed, not a large file; or raise gather.max_body_mb",
    )


def size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"
