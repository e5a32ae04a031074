"""Secrets that stay out of a cluster's task graph: a reference to the files that hold a key, identities or a
passphrase, which pickles as their paths and is read in the process that uses it.

A stage's settings hold either a secret itself (local runs) or a :class:`SecretFile` (runs with --scheduler, whose
tasks are pickled to the workers); the stage takes the value with :func:`reveal`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class SecretFile:
    """The secret that ``load(files)`` (``load(files, passphrase=...)`` with `passphrase`, itself a reference, for
    files protected by one) returns with its warnings, as privspeech's loaders do: `files` is a path or a tuple of
    paths. The warnings are dropped: the client showed them when it checked the files.

    Read on first use in each process, and again when a file changes. Pickled, it is the loader (a module-level
    function), the absolute paths and the passphrase's reference, never the secret. Calling it gives the secret,
    so it serves as a passphrase too (:data:`privspeech.crypto.passphrase.Passphrase`).
    """

    load: Callable[..., tuple[Any, list[str]]]
    files: str | tuple[str, ...]
    passphrase: SecretFile | None = None

    def __post_init__(self):
        files = os.path.abspath(self.files) if isinstance(self.files, str) else tuple(map(os.path.abspath, self.files))
        object.__setattr__(self, "files", files)

    def __call__(self) -> Any:
        paths = (self.files,) if isinstance(self.files, str) else self.files
        return _read(self, tuple(_stamp(path) for path in paths))


def reveal(secret: Any) -> Any:
    """The value of a secret given as itself or as a :class:`SecretFile`."""
    return secret() if isinstance(secret, SecretFile) else secret


@functools.lru_cache(maxsize=16)
def _read(ref: SecretFile, stamps: tuple) -> Any:
    """`ref`'s secret, cached per process for as long as its files are unchanged (`stamps`)."""
    if ref.passphrase is None:
        return ref.load(ref.files)[0]
    return ref.load(ref.files, passphrase=ref.passphrase)[0]


def _stamp(path: str) -> tuple | None:
    """What changes when the file at `path` is replaced or rewritten (None: not there; loading it says why)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
