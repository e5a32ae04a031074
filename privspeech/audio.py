"""Reading and writing audio: every format libsndfile reads, pipes, validation, atomic writes.

Signals are numpy arrays of shape ``(frames, channels)``; DSP code takes and returns float arrays.
"""

from __future__ import annotations

import contextlib
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

from .errors import ExitStatus, PrivspeechError, from_os_error
from .fsutil import atomic_write, binary_stdout

STDIO = "-"
AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b".snd", b"caff", b"NIST")
_WAV_KEEP = set(sf.available_subtypes("WAV"))
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF", ".w64": "W64",
            ".rf64": "RF64", ".caf": "CAF"}
HASH_CHUNK = 1 << 20


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


def is_audio_magic(head: bytes) -> bool:
    """True when `head` starts like a container libsndfile reads (used to tell audio from a manifest on stdin)."""
    return head[:4] in AUDIO_MAGIC


def _open(source: str | os.PathLike | BinaryIO, name: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(source)
    except sf.LibsndfileError as exc:
        reason = str(exc).split(": ", 1)[-1].strip() or "unreadable"
        raise PrivspeechError(f"{name}: not a readable audio file ({reason})",
                              hint="privspeech reads WAV, FLAC, OGG and the other formats libsndfile knows",
                              status=ExitStatus.DATAERR) from None
    except OSError as exc:
        raise from_os_error(exc, name) from None


def _load_source(path: str | os.PathLike) -> tuple[str | BinaryIO, str, bytes]:
    """Resolve '-' to a buffer of stdin; check a path is a non-empty regular file. Returns (source, name, head)."""
    if str(path) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise PrivspeechError("<stdin>: empty input", hint="pipe an audio file in", status=ExitStatus.DATAERR)
        return io.BytesIO(data), "<stdin>", data[:64]
    name = str(path)
    try:
        with open(path, "rb") as fh:
            if not os.path.isfile(path):
                raise PrivspeechError(f"{name}: not a regular file", status=ExitStatus.DATAERR)
            head = fh.read(64)
    except IsADirectoryError:
        raise PrivspeechError(f"{name}: is a folder, not an audio file", status=ExitStatus.DATAERR) from None
    except OSError as exc:
        raise from_os_error(exc, name) from None
    if not head:
        raise PrivspeechError(f"{name}: empty file", hint="the file holds no audio", status=ExitStatus.DATAERR)
    return name, name, head


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read only the header of `path`."""
    source, name, _ = _load_source(path)
    with _open(source, name) as snd:
        return _info(snd)


def _info(snd: sf.SoundFile) -> AudioInfo:
    return AudioInfo(snd.samplerate, snd.channels, snd.frames, snd.format, snd.subtype)


def read(path: str | os.PathLike, *, dtype: str = "float64") -> Audio:
    """Decode a whole file (or '-' for stdin) into shape (frames, channels).

    Refuses empty and zero-length recordings and non-finite samples (DATAERR). A WAV whose header promises more
    data than the file holds is decoded as far as it goes, with a warning.
    """
    source, name, head = _load_source(path)
    with _open(source, name) as snd:
        info = _info(snd)
        try:
            data = snd.read(dtype=dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise PrivspeechError(f"{name}: corrupt audio data ({exc})", status=ExitStatus.DATAERR) from None
    warnings = []
    declared = _declared_wav_frames(source, head, info)
    if declared is not None and declared > data.shape[0]:
        warnings.append(f"{name}: header declares {declared} frames but the file holds {data.shape[0]}; "
                        f"processing what is there")
    if data.shape[0] == 0:
        raise PrivspeechError(f"{name}: zero-length recording", hint="the file holds no samples",
                              status=ExitStatus.DATAERR)
    if info.subtype in ("FLOAT", "DOUBLE", "VORBIS", "OPUS") and not np.isfinite(data).all():
        raise PrivspeechError(f"{name}: contains NaN or infinite samples",
                              hint="repair the file; privspeech will not guess values", status=ExitStatus.DATAERR)
    return Audio(data, AudioInfo(info.sample_rate, info.channels, data.shape[0], info.format, info.subtype), warnings)


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
    """(format, subtype) for writing `dest`: format from the suffix (WAV by default), subtype kept when it fits."""
    fmt = _FORMATS.get(Path(str(dest)).suffix.lower(), "WAV") if str(dest) != STDIO else "WAV"
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
        with sf.SoundFile(fh.fileno(), "w", samplerate=sample_rate, channels=channels, format=fmt, subtype=subtype,
                          closefd=False) as snd:
            yield snd, result
        fh.seek(0)
        result.sha256 = sha256_stream(fh)


def write(dest: str | os.PathLike, data: np.ndarray, *, sample_rate: int, subtype: str | None = None,
          force: bool = False, private: bool = False) -> str:
    """Write a signal of shape (frames,) or (frames, channels) atomically; returns the sha256 of the file."""
    data = np.asarray(data)
    channels = 1 if data.ndim == 1 else data.shape[1]
    with open_output(dest, sample_rate=sample_rate, channels=channels, subtype=subtype, force=force,
                     private=private) as (snd, result):
        snd.write(data)
    return result.sha256


def sha256_stream(fh: BinaryIO) -> str:
    """sha256 of what remains in an open binary file."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    try:
        with open(path, "rb") as fh:
            return sha256_stream(fh)
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None
