"""The block path for long recordings: same voice as one-shot, no seams, any block size, bounded memory."""

from __future__ import annotations

import tracemalloc

import librosa
import numpy as np
import pytest
import soundfile as sf

from conftest import VCTK
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.keys import SecretKey
from privspeech.voice import VoiceStream, anonymize
from privspeech.voice.world import WorldSettings, analyse

KEY = SecretKey(bytes(range(32)))
SR = 16000


@pytest.fixture(scope="module")
def long_speech() -> np.ndarray:
    """About 41 s of one speaker's real read speech."""
    return np.concatenate([sf.read(f)[0] for f in sorted((VCTK / "p227").glob("*.wav"))[:6]])


def stream(x: np.ndarray, *, block: int, method: str = "world", **kwargs) -> tuple[np.ndarray, list[int]]:
    s = VoiceStream(sr=SR, channels=1, key=KEY, speaker="p227", method=method, **kwargs)
    out = [s.process(x[i : i + block]) for i in range(0, x.size, block)] + [s.flush()]
    return np.concatenate(out), s.cuts


def log_mel(y: np.ndarray, floor: float) -> np.ndarray:
    return np.log(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=160, n_mels=40) + floor)


def mean_f0(x: np.ndarray) -> float:
    f0 = analyse(x, sr=SR, settings=WorldSettings()).f0
    return float(np.exp(np.log(f0[f0 > 0]).mean()))


@pytest.mark.slow
def test_world_block_path_matches_one_shot_without_seams(long_speech):
    x = long_speech
    one_shot, no_cuts = stream(x, block=x.size, segment_seconds=1e6)
    blocks, cuts = stream(x, block=4096, segment_seconds=8.0)
    assert no_cuts == [] and len(cuts) >= 4
    assert blocks.shape == one_shot.shape == x.shape
    assert np.array_equal(blocks, stream(x, block=12345, segment_seconds=8.0)[0])  # block size is irrelevant
    assert np.array_equal(one_shot, anonymize(x, sr=SR, key=KEY, speaker="p227", segment_seconds=1e6))

    # the same pseudo-speaker at the same loudness; a target placed from the source's F0 (same-side ones always are)
    # is fixed from the first segment's estimate of it, so the paths may also differ by that estimate's error
    estimate_error = abs(12 * np.log2(mean_f0(x[: cuts[0]]) / mean_f0(x)))
    assert abs(12 * np.log2(mean_f0(blocks) / mean_f0(one_shot))) < 0.5 + estimate_error
    assert abs(20 * np.log10(np.std(blocks) / np.std(one_shot))) < 1.0

    # no click: at each join the sample-to-sample step stays within the signal's own local range
    step = np.abs(np.diff(blocks))
    for cut in cuts:
        assert step[cut - 80 : cut + 80].max() <= np.percentile(step[cut - SR // 2 : cut + SR // 2], 99)

    # no spectral discontinuity: frames at the joins differ from one-shot no more than frames elsewhere
    floor = 1e-4 * librosa.feature.melspectrogram(y=x, sr=SR, n_fft=512, hop_length=160, n_mels=40).max()
    dist = np.abs(log_mel(one_shot, floor) - log_mel(blocks, floor)).mean(axis=0)
    centres = np.arange(dist.size) * 160
    at_seam = np.zeros(dist.size, dtype=bool)
    for cut in cuts:
        at_seam |= np.abs(centres - cut) <= 320
    assert dist[at_seam].max() <= np.percentile(dist[~at_seam], 99)


@pytest.mark.slow
def test_mcadams_block_path_equals_one_shot_up_to_each_segments_level(long_speech):
    """McAdams is frame-local, so between joins each block-path segment is the one-shot output times the
    segment's own loudness gain, up to its 10 ms frame grid starting at a different phase (about 35 dB SNR)."""
    x = long_speech[: 20 * SR]
    one_shot, _ = stream(x, block=x.size, method="mcadams", segment_seconds=1e6)
    blocks, cuts = stream(x, block=3000, method="mcadams", segment_seconds=5.0)
    assert len(cuts) >= 3
    edges = [0, *cuts, x.size]
    for start, stop in zip(edges[:-1], edges[1:]):
        o, b = one_shot[start + 160 : stop - 160], blocks[start + 160 : stop - 160]
        gain = np.dot(o, b) / np.dot(o, o)
        assert abs(20 * np.log10(gain)) < 3.0
        assert 10 * np.log10(np.sum(b**2) / np.sum((b - gain * o) ** 2)) > 30.0


@pytest.mark.slow
def test_memory_stays_bounded_as_input_grows(long_speech):
    """Peak traced memory for 2 minutes of input is no more than for 30 s (blocks of 4096, 5 s segments)."""

    def peak(seconds: int) -> int:
        s = VoiceStream(sr=SR, channels=1, key=KEY, speaker="p227", method="mcadams", segment_seconds=5.0)
        reps = np.resize(long_speech, seconds * SR)
        tracemalloc.start()
        total = 0
        for i in range(0, reps.size, 4096):
            total += s.process(reps[i : i + 4096]).size
        total += s.flush().size
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert total == reps.size
        return top

    short, long_ = peak(30), peak(120)
    assert long_ < 1.2 * short


@pytest.mark.slow
def test_stereo_blocks_and_float32():
    x = np.stack([sf.read(VCTK / "p225" / "p225_003.wav")[0], sf.read(VCTK / "p228" / "p228_005.wav")[0][:96161]],
                 axis=1).astype(np.float32)
    s = VoiceStream(sr=SR, channels=2, key=KEY, speaker="p2", segment_seconds=4.0)
    parts = [s.process(x[i : i + 5000]) for i in range(0, x.shape[0], 5000)] + [s.flush()]
    assert all(p.ndim == 2 and p.shape[1] == 2 and p.dtype == np.float32 for p in parts)
    assert sum(p.shape[0] for p in parts) == x.shape[0]


@pytest.mark.parametrize("kwargs", [{"segment_seconds": 2.0}, {"channels": 0}, {"channels": True},
                                    {"sr": 7999}, {"method": "psola"}])
def test_bad_stream_settings(kwargs):
    args = {"sr": SR, "channels": 1, "key": KEY, "speaker": "s", **kwargs}
    with pytest.raises(PrivspeechError) as err:
        VoiceStream(**args)
    assert err.value.status in (ExitStatus.USAGE, ExitStatus.DATAERR)


def test_misuse_of_a_stream():
    s = VoiceStream(sr=SR, channels=2, key=KEY, speaker="s")
    with pytest.raises(PrivspeechError, match="1 channels, expected 2"):
        s.process(np.zeros(100))
    bad = np.zeros((100, 2))
    bad[5, 1] = np.nan
    with pytest.raises(PrivspeechError, match="NaN"):
        s.process(bad)
    assert s.process(np.zeros((100, 2))).shape == (0, 2)
    assert s.flush().shape == (100, 2)
    with pytest.raises(PrivspeechError, match="after flush"):
        s.process(np.zeros((10, 2)))
    with pytest.raises(PrivspeechError, match="twice"):
        s.flush()
