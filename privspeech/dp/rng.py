"""The cryptographically secure random source behind every DP release: a ChaCha20 keystream.

The key comes from ``os.urandom``; a seed (tests only) derives the key with SHA-256 and marks the
generator, and everything released with it, as not private.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ..errors import UsageError

NAME = "chacha20"


class SecureRandom:
    """Uniform random 64-bit words from a ChaCha20 keystream (OpenSSL, via `cryptography`).

    Parameters
    ----------
    seed : int, bytes or str, optional
        For tests only: a reproducible stream. The generator then reports ``private = False`` and
        every ledger entry made with it says so.
    """

    def __init__(self, seed: int | bytes | str | None = None):
        if seed is None:
            key = os.urandom(32)
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, bytes, str)):
                raise UsageError(f"seed must be an integer, bytes or text, not {type(seed).__name__}")
            material = seed if isinstance(seed, bytes) else str(seed).encode()
            key = hashlib.sha256(b"privspeech/dp-seed/" + material).digest()
        self.private = seed is None
        self._stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
        self._zeros = b""

    def __repr__(self) -> str:
        return f"SecureRandom({NAME}, private={self.private})"

    @property
    def description(self) -> str:
        """The generator as named in ledger entries."""
        return f"{NAME}/os.urandom" if self.private else f"{NAME}/seeded (NOT PRIVATE)"

    def bytes(self, n: int) -> bytes:
        """`n` keystream bytes."""
        if len(self._zeros) < n:
            self._zeros = bytes(n)
        return self._stream.update(memoryview(self._zeros)[:n])

    def words(self, n: int) -> np.ndarray:
        """`n` independent uniform integers in [0, 2**64), shape (n,), dtype uint64."""
        return np.frombuffer(self.bytes(8 * n), dtype="<u8").astype(np.uint64, copy=False)

    def word(self) -> int:
        """One uniform integer in [0, 2**64) as a Python int."""
        return int.from_bytes(self.bytes(8), "little")

    def bits(self, n: int) -> np.ndarray:
        """`n` independent fair bits, shape (n,), dtype bool."""
        raw = np.frombuffer(self.bytes((n + 7) // 8), dtype=np.uint8)
        return np.unpackbits(raw, count=n).astype(bool)


def resolve(rng: SecureRandom | None) -> SecureRandom:
    """The generator to use: the one given, or a fresh one keyed from ``os.urandom``."""
    if rng is None:
        return SecureRandom()
    if not isinstance(rng, SecureRandom):
        raise UsageError(f"DP noise needs a privspeech.dp.SecureRandom, not {type(rng).__name__}",
                         hint="numpy generators are not cryptographically secure")
    return rng
