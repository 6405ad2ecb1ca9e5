"""Identifiers: ULIDs (time-ordered, 26 characters of Crockford base32)."""

from __future__ import annotations

import os
import time

from ulid import ULID

_ALPHABET = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Each random byte becomes one character: 256 is a multiple of 32, so every character is
# equally likely and carries 5 random bits.
_TO_BASE32 = bytes(_ALPHABET[b % 32] for b in range(256))


def new_id() -> str:
    return str(ULID())


_prefix: tuple[int, str] = (-1, "")


def _time_prefix() -> str:
    """The ULID timestamp part for this millisecond (made once per millisecond)."""
    global _prefix
    ms = time.time_ns() // 1_000_000
    if _prefix[0] != ms:
        _prefix = (ms, str(ULID.from_timestamp(ms))[:10])  # int: milliseconds
    return _prefix[1]


_pool = b""
POOL_BYTES = 16 * 256


def _random_chars(count: int) -> str:
    """`count` random base32 characters, drawn from a pool refilled 4 KiB at a time (one
    system call for many single submissions)."""
    global _pool
    if count > len(_pool):
        if count > POOL_BYTES:
            return os.urandom(count).translate(_TO_BASE32).decode()
        _pool = os.urandom(POOL_BYTES)
    chunk, _pool = _pool[:count], _pool[count:]
    return chunk.translate(_TO_BASE32).decode()


def _forget_pool() -> None:
    global _pool
    _pool = b""  # a forked child must not draw the same randomness as its parent


os.register_at_fork(after_in_child=_forget_pool)


def new_ids(n: int) -> list[str]:
    """`n` ULIDs sharing this millisecond's timestamp, 80 random bits each (the hot path of
    submissions and schedule firing)."""
    prefix = _time_prefix()
    rnd = _random_chars(16 * n)
    return [prefix + rnd[i : i + 16] for i in range(0, 16 * n, 16)]
