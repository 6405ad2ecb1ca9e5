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


def new_ids(n: int) -> list[str]:
    """`n` ULIDs sharing this millisecond's timestamp, 80 random bits each — one system call
    for the whole batch (the hot path of bulk submissions and schedule firing)."""
    prefix = _time_prefix()
    rnd = os.urandom(16 * n).translate(_TO_BASE32).decode()
    return [prefix + rnd[i : i + 16] for i in range(0, 16 * n, 16)]
