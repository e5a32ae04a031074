"""Record stages: one module per stage holds its settings and its per-record function; this module says what the
runner (:mod:`privspeech.pipeline`) needs to know of a stage.

A stage's settings are a frozen dataclass deriving from :class:`Settings`: every field names the output for resume
(a rerun with other settings redoes the work) unless its metadata says otherwise (:func:`setting`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

from ..fsutil import STDIO
from ..removal import SourceRemover

_IDENTITY = "privspeech.identity"


def setting(*, identity: Callable[[Any], Any] | None, **kwargs: Any) -> Any:
    """A settings field that names the output by `identity(value)` (None: not at all, as the output's bytes do not
    depend on it: a key that only opens the input, a check made before publishing)."""
    return field(metadata={_IDENTITY: identity}, **kwargs)


class Settings:
    """The base of a stage's settings dataclass."""

    def identity(self) -> dict[str, Any]:
        """What names this stage's outputs for resume: every field (a secret only by the public name its
        :func:`setting` gives it)."""
        found = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if _IDENTITY not in f.metadata:
                found[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            elif f.metadata[_IDENTITY] is not None:
                found[f.name] = f.metadata[_IDENTITY](value)
        return found


@dataclass(frozen=True)
class Naming:
    """How an input's path under its root becomes its output's under --out-dir: the path without its suffix and
    `suffix` added ('replace': ``a/1.flac`` -> ``a/1.wav``), the whole path and `suffix` added ('append':
    ``a/1.wav`` -> ``a/1.wav.age``) or the whole path less `suffix` ('strip': ``a/1.wav.age`` -> ``a/1.wav``)."""

    kind: str
    suffix: str

    def name(self, rel: str, src: str) -> str:
        """The output's path under the out-dir of the input `src` found at `rel` (suffix-less) under its root."""
        if self.kind == "replace":
            return rel + self.suffix
        name = "stdin" if src == STDIO else PurePosixPath(src).name
        name = name + self.suffix if self.kind == "append" else name.removesuffix(self.suffix)
        return str(PurePosixPath(rel).parent / name)


WAV = Naming("replace", ".wav")


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: its op name, ``work(task, settings) -> Record`` (top-level, so picklable), its settings,
    how its outputs are named (None: it writes no files, as scan), whether its work is I/O bound (hashing,
    encryption: run in threads, which these libraries release the GIL for) rather than CPU bound in Python (DSP:
    run in worker processes), and the remover of the inputs it consumes, if any."""

    name: str
    work: Callable[..., Any]
    settings: Settings | None = None
    naming: Naming | None = None
    io_bound: bool = False
    remover: SourceRemover | None = None

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        """The settings that name this stage's outputs."""
        return self.settings.identity() if self.settings is not None else {}

    @property
    def identity(self) -> str:
        """Names the stage and its settings (not its input) in the journal."""
        blob = json.dumps({"stage": self.name, "params": self.params}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()
