"""Reading and writing audio: every format libsndfile reads, pipes, validation, atomic writes.

Signals are numpy arrays of shape ``(frames, channels)``; DSP code takes and returns float arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf

from .errors import DataError, from_os_error, IOFailure, PrivspeechError, UsageError
from .fsutil import STDIO, atomic_write, binary_stdout, sha256_stream

_WAV_KEEP = set(sf.available_subtypes("WAV"))
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF", ".w64": "W64",
            ".rf64": "RF64", ".caf": "CAF"}
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE", "VORBIS", "OPUS")  # decoded values may be NaN or infinite


@dataclass(frozen=True)
class AudioInfo:
    """What the container says: rate, channels, frames, format and subtype (e.g. 'PCM_16')."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass
class Audio:
    """A decoded signal, shape (frames, channels), with its container's description and read warnings."""

    data: np.ndarray
    info: AudioInfo
    warnings: list[str]


def _open(source: str | os.PathLike | BinaryIO, name: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(source)
    except sf.LibsndfileError as exc:
        reason = str(exc).split(": ", 1)[-1].strip() or "unreadable"
        raise DataError(f"{name}: not a readable audio file ({reason})",
                        hint="privspeech reads WAV, FLAC, OGG and the other formats libsndfile knows") from None
    except OSError as exc:
        raise from_os_error(exc, name) from None


def _load_source(path: str | os.PathLike) -> tuple[str | BinaryIO, str, bytes]:
    """Resolve '-' to a buffer of stdin; check a path is a non-empty regular file. Returns (source, name, head)."""
    if str(path) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise DataError("<stdin>: empty input", hint="pipe an audio file in")
        return io.BytesIO(data), "<stdin>", data[:64]
    name = str(path)
    try:
        with open(path, "rb") as fh:
            if not os.path.isfile(path):
                raise DataError(f"{name}: not a regular file")
            head = fh.read(64)
    except IsADirectoryError:
        raise DataError(f"{name}: is a folder, not an audio file") from None
    except OSError as exc:
        raise from_os_error(exc, name) from None
    if not head:
        raise DataError(f"{name}: empty file", hint="the file holds no audio")
    return name, name, head


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read only the header of `path`."""
    source, name, _ = _load_source(path)
    with _open(source, name) as snd:
        return _info(snd)


def _info(snd: sf.SoundFile) -> AudioInfo:
    return AudioInfo(snd.samplerate, snd.channels, snd.frames, snd.format, snd.subtype)


class Reader:
    """An open input, decoded whole or block by block; every failure is one DATAERR line naming the file.

    `info` is what the header says until reading ends, then what was read (frames counted); `warnings`
    collects what the caller should pass on (e.g. a header that promises more data than the file holds).
    Empty and zero-length recordings and non-finite samples are refused.
    """

    def __init__(self, snd: sf.SoundFile, name: str, source: str | BinaryIO, head: bytes):
        self.info = _info(snd)
        self.name = name
        self.warnings: list[str] = []
        self._snd, self._source, self._head = snd, source, head
        self._frames = 0
        if self.info.frames == 0:
            self._zero_length()

    def read(self, *, dtype: str = "float64") -> np.ndarray:
        """All of the recording, shape (frames, channels)."""
        data = self._read(-1, dtype)
        self._finish()
        return data

    def blocks(self, frames: int, *, dtype: str = "float64") -> Iterator[np.ndarray]:
        """Consecutive blocks of `frames` frames (the last may be shorter), shape (n, channels).

        `dtype` 'int16' or 'int32' gives PCM audio on its integer grid (libsndfile scales other formats).
        """
        while True:
            block = self._read(frames, dtype)
            if not block.shape[0]:
                break
            yield block
        self._finish()

    def _read(self, frames: int, dtype: str) -> np.ndarray:
        try:
            data = self._snd.read(frames, dtype=dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            reason = str(exc).removeprefix("Error : ").strip() or "unreadable"
            raise DataError(f"{self.name}: corrupt audio data ({reason})",
                            hint="the file is damaged; get an intact copy") from None
        if self.info.subtype in FLOAT_SUBTYPES and not np.isfinite(data).all():
            raise DataError(f"{self.name}: contains NaN or infinite samples",
                            hint="repair the file; privspeech will not guess values")
        self._frames += data.shape[0]
        return data

    def _finish(self) -> None:
        declared = _declared_wav_frames(self._source, self._head, self.info)
        if declared is not None and declared > self._frames:
            self.warnings.append(f"{self.name}: header declares {declared} frames but the file holds {self._frames}; "
                                 f"processing what is there")
        if self._frames == 0:
            self._zero_length()
        self.info = dataclasses.replace(self.info, frames=self._frames)

    def _zero_length(self) -> None:
        raise DataError(f"{self.name}: zero-length recording", hint="the file holds no samples")


@contextlib.contextmanager
def open_input(path: str | os.PathLike) -> Iterator[Reader]:
    """A :class:`Reader` of `path` ('-': stdin, buffered in memory as it comes)."""
    source, name, head = _load_source(path)
    with _open(source, name) as snd:
        yield Reader(snd, name, source, head)


def read(path: str | os.PathLike, *, dtype: str = "float64") -> Audio:
    """Decode a whole file (or '-' for stdin) into shape (frames, channels).

    Refuses empty and zero-length recordings and non-finite samples (DATAERR). A WAV whose header promises more
    data than the file holds is decoded as far as it goes, with a warning.
    """
    with open_input(path) as reader:
        data = reader.read(dtype=dtype)
    return Audio(data, reader.info, reader.warnings)


def _declared_wav_frames(source: str | BinaryIO, head: bytes, info: AudioInfo) -> int | None:
    """Frames a RIFF/WAVE header's data chunk declares (libsndfile silently trusts the file size instead)."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fh = source if not isinstance(source, str) else open(source, "rb")
    try:
        fh.seek(12)
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, size = struct.unpack("<4sI", chunk)
            if cid == b"data":
                bytes_per_frame = _bytes_per_frame(info)
                return size // bytes_per_frame if bytes_per_frame else None
            fh.seek(size + (size & 1), os.SEEK_CUR)
    finally:
        if isinstance(source, str):
            fh.close()


def _bytes_per_frame(info: AudioInfo) -> int | None:
    widths = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
              "ULAW": 1, "ALAW": 1}
    width = widths.get(info.subtype)
    return width * info.channels if width else None


def output_format(dest: str | os.PathLike, source_subtype: str | None) -> tuple[str, str]:
    """(format, subtype) for writing `dest`: format from the suffix (WAV on stdout), subtype kept when it fits;
    refuses a suffix it cannot write (usage error), rather than writing WAV under that name."""
    fmt = "WAV" if str(dest) == STDIO else _FORMATS.get(Path(str(dest)).suffix.lower())
    if fmt is None:
        suffix = Path(str(dest)).suffix or "no suffix"
        raise UsageError(f"{dest}: cannot write audio with {suffix}",
                         hint=f"name it with one of {', '.join(_FORMATS)}; convert afterwards with sox or ffmpeg")
    if source_subtype and sf.check_format(fmt, source_subtype):
        return fmt, source_subtype
    return fmt, sf.default_subtype(fmt)


class Output:
    """Where a written file ended up: its sha256 (filled in when writing completes)."""

    sha256: str | None = None


@contextlib.contextmanager
def open_output(dest: str | os.PathLike, *, sample_rate: int, channels: int, subtype: str | None = None,
                force: bool = False, private: bool = False) -> Iterator[tuple[sf.SoundFile, Output]]:
    """A SoundFile for writing `dest` ('-' for stdout) atomically; yields (soundfile, Output).

    The file appears complete or not at all; `Output.sha256` holds the digest of the bytes written.
    """
    fmt, subtype = output_format(dest, subtype)
    result = Output()
    if str(dest) == STDIO:
        out = binary_stdout()
        buffer = io.BytesIO()
        with sf.SoundFile(buffer, "w", samplerate=sample_rate, channels=channels, format=fmt, subtype=subtype) as snd:
            yield snd, result
        payload = buffer.getvalue()
        result.sha256 = hashlib.sha256(payload).hexdigest()
        out.write(payload)
        out.flush()
        return
    with atomic_write(dest, force=force, private=private) as fh:
        # libsndfile writes through the descriptor itself: no Python I/O callbacks for Ctrl-C to land in
        try:
            with sf.SoundFile(fh.fileno(), "w", samplerate=sample_rate, channels=channels, format=fmt,
                              subtype=subtype, closefd=False) as snd:
                yield snd, result
        except sf.LibsndfileError as exc:
            raise _write_error(dest, fh.fileno(), exc) from None
        fh.seek(0)
        result.sha256 = sha256_stream(fh)


def _write_error(dest: str | os.PathLike, fd: int, exc: sf.LibsndfileError) -> PrivspeechError:
    """A failed libsndfile write as one line. libsndfile says only 'System error' (no errno), so a full
    filesystem is recognised by its free space."""
    try:
        full = os.fstatvfs(fd).f_bavail == 0
    except OSError:
        full = False
    if full:
        return from_os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), str(dest), writing=True)
    reason = str(exc).split(": ")[-1].strip() or "write failed"
    return IOFailure(f"cannot write {dest}: {reason}", hint="check the free space and quota of its filesystem")


def write(dest: str | os.PathLike, data: np.ndarray, *, sample_rate: int, subtype: str | None = None,
          force: bool = False, private: bool = False) -> str:
    """Write a signal of shape (frames,) or (frames, channels) atomically; returns the sha256 of the file."""
    data = np.asarray(data)
    channels = 1 if data.ndim == 1 else data.shape[1]
    with open_output(dest, sample_rate=sample_rate, channels=channels, subtype=subtype, force=force,
                     private=private) as (snd, result):
        snd.write(data)
    return result.sha256
