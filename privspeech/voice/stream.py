"""Block-wise anonymization of long recordings with bounded memory and seamless joins.

The input is cut into segments of about `segment_seconds`. Each cut is placed at the quietest 20 ms
of the input within one second of the nominal position, every segment is converted with one second
of context on both sides (starting on the method's frame grid, so frames fall where one pass puts
them), level-matched on its own core, and neighbouring outputs are joined by a 20 ms raised-cosine
crossfade centred on the cut. Cuts depend only on the input samples, never on how the caller sizes
its blocks, so any block sizes give the same output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from ..keys import SecretKey
from .loudness import active_frames, limit_peaks, match_gain
from .methods import check_method, check_rate, identity, make_voices, resolve_settings

SEGMENT_SECONDS = 30.0
CONTEXT_SECONDS = 1.0
SEARCH_SECONDS = 1.0
FADE_SECONDS = 0.02
QUIET_WINDOW_SECONDS = 0.02


def check_signal(y: Any, *, channels: int | None = None, what: str = "audio") -> np.ndarray:
    """Refuse anything but a finite float array of shape (n,) or (n, channels)."""
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.floating):
        raise DataError(f"{what} must be a floating-point numpy array, got "
                        f"{getattr(y, 'dtype', type(y).__name__)}")
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
        raise DataError(f"{what} must have shape (n,) or (n, channels), got {y.shape}")
    width = 1 if y.ndim == 1 else y.shape[1]
    if channels is not None and width != channels:
        raise DataError(f"{what} has {width} channels, expected {channels}")
    if not np.isfinite(y).all():
        raise DataError(f"{what} contains NaN or infinite samples", hint="the file is corrupt or was "
                        "decoded wrongly")
    return y


def quietest_point(power: np.ndarray, window: int) -> int:
    """Index of the centre of the `window` consecutive samples of `power` (shape (n,)) with the least energy."""
    energy = np.convolve(power, np.ones(window), mode="valid")
    return int(np.argmin(energy)) + window // 2


class VoiceStream:
    """Anonymize a recording block by block: ``process(block)`` returns the output ready so far, ``flush()``
    the rest. The outputs concatenated have exactly the input's length.

    Parameters
    ----------
    sr : int
        Sample rate, 8000 to 48000 Hz.
    channels : int
        Channel count; blocks have shape (n, channels), or (n,) when mono.
    key : SecretKey
        The secret the pseudo-speaker is drawn with.
    speaker, utterance : str, optional
        Ids; the one named by `level` is required.
    method : {"world", "mcadams"}
    level : {"speaker", "utterance"}
    segment_seconds : float
        Nominal segment length (memory grows with it; at least 4 s).
    **settings
        Method settings (see :class:`privspeech.voice.world.WorldSettings`).

    Examples
    --------
    >>> stream = VoiceStream(sr=sf_in.samplerate, channels=sf_in.channels, key=key, speaker="spk01")
    >>> for block in sf_in.blocks(blocksize=65536, dtype="float32", always_2d=True):
    ...     sf_out.write(stream.process(block))
    >>> sf_out.write(stream.flush())
    """

    def __init__(self, *, sr: int, channels: int, key: SecretKey, speaker: str | None = None,
                 utterance: str | None = None, method: str = "world", level: str = "speaker",
                 segment_seconds: float = SEGMENT_SECONDS, **settings: Any):
        check_method(method, level)
        self.sr = check_rate(sr)
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise UsageError(f"channels must be a positive integer, got {channels!r}")
        if not segment_seconds >= 4.0:
            raise UsageError(f"segment_seconds must be at least 4, got {segment_seconds}")
        self.channels = int(channels)
        self.settings = resolve_settings(method, settings)
        self._voices = make_voices(method, level, self.settings, key=key,
                                   ident=identity(level, speaker, utterance), sr=self.sr, channels=self.channels)
        self._segment = int(segment_seconds * sr)
        self._context = int(CONTEXT_SECONDS * sr)
        self._search = int(SEARCH_SECONDS * sr)
        self._window = max(1, int(QUIET_WINDOW_SECONDS * sr))
        self._half_fade = max(1, int(FADE_SECONDS * sr) // 2)
        self._grid = self._voices[0].grid  # segments start on the method's frame grid, as in one pass
        fade = np.linspace(0.0, np.pi, 2 * self._half_fade, endpoint=False) + np.pi / (4 * self._half_fade)
        self._fade_in = (0.5 - 0.5 * np.cos(fade))[:, None]
        self._buf = np.zeros((0, self.channels))
        self._buf_start = 0  # absolute position of self._buf[0]
        self._cut = 0  # absolute position where the next segment's core starts
        self._tail: np.ndarray | None = None  # previous output around self._cut, for the crossfade
        self._dtype: np.dtype | None = None
        self._mono: bool | None = None
        self._finished = False
        self.cuts: list[int] = []  # absolute sample positions where segments were joined

    @property
    def voices(self) -> list:
        """The per-channel converters (e.g. to set a WORLD ``f0_hook`` before the first block)."""
        return self._voices

    @property
    def _end(self) -> int:
        return self._buf_start + self._buf.shape[0]

    def process(self, block: np.ndarray) -> np.ndarray:
        """Take the next input block, shape (n,) or (n, channels); return the output now complete."""
        if self._finished:
            raise UsageError("VoiceStream.process called after flush")
        block = check_signal(block, channels=self.channels, what="input block")
        if self._dtype is None:
            self._dtype, self._mono = block.dtype, block.ndim == 1
        self._buf = np.concatenate([self._buf, block.reshape(block.shape[0], self.channels).astype(np.float64)])
        ready = []
        while self._end >= self._cut + self._segment + self._search + self._window + self._context:
            ready.append(self._convert(self._next_cut(), final=False))
        return self._shape(ready)

    def flush(self) -> np.ndarray:
        """Convert what is left and return the last output samples."""
        if self._finished:
            raise UsageError("VoiceStream.flush called twice")
        self._finished = True
        if self._dtype is None:
            self._dtype, self._mono = np.dtype(np.float64), self.channels == 1
        ready = [self._convert(self._end, final=True)] if self._end > self._cut else []
        return self._shape(ready)

    def _shape(self, parts: list[np.ndarray]) -> np.ndarray:
        out = np.concatenate(parts) if parts else np.zeros((0, self.channels))
        out = out.astype(self._dtype, copy=False)
        return out[:, 0] if self._mono else out

    def _next_cut(self) -> int:
        """The quietest point (mono mix) within `search` of the nominal cut."""
        lo = self._cut + self._segment - self._search - self._buf_start
        power = np.square(self._buf[lo : lo + 2 * self._search + self._window]).mean(axis=1)
        return self._buf_start + lo + quietest_point(power, self._window)

    def _convert(self, cut: int, *, final: bool) -> np.ndarray:
        """Convert the segment with core [self._cut, cut) and return its finished output."""
        h = self._half_fade
        start = max((self._cut - self._context) // self._grid * self._grid, 0)
        stop = self._end if final else cut + self._context
        x = self._buf[start - self._buf_start : stop - self._buf_start]
        core = slice(self._cut - start, cut - start)
        y = np.zeros_like(x)
        limit = max(1.0, float(np.abs(x).max(initial=0.0)))
        for ch, voice in enumerate(self._voices):
            if not active_frames(x[core, ch], sr=self.sr).any():
                continue  # silence stays silence
            converted = voice.convert(np.ascontiguousarray(x[:, ch]), core)
            gain = match_gain(x[core, ch], converted[core], sr=self.sr)
            y[:, ch] = limit_peaks(converted * gain, sr=self.sr, ceiling=limit)
        out_start = self._cut - start
        if self._tail is not None:  # crossfade over [self._cut - h, self._cut + h)
            out_start -= h
            y[out_start : out_start + 2 * h] = (self._tail * (1.0 - self._fade_in)
                                                + y[out_start : out_start + 2 * h] * self._fade_in)
        out_stop = y.shape[0] if final else cut - start - h
        if not final:
            self.cuts.append(cut)
            self._tail = y[cut - start - h : cut - start + h].copy()
            keep = max((cut - self._context) // self._grid * self._grid, 0)
            self._buf = self._buf[keep - self._buf_start :]
            self._buf_start = keep
        self._cut = cut
        return y[out_start:out_stop]
