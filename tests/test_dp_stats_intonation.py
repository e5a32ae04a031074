"""Central DP statistics over corpus records, and the DP intonation contour on real speech."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf

from conftest import SPEAKERS, corpus_files
from privspeech.dp.guarantee import describe
from privspeech.dp.contour import dp_intonation
from privspeech.dp.rng import SecureRandom
from privspeech.dp.statistics import bound_contributions, parse_statistic, release
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.manifest import Record


@pytest.fixture(scope="module")
def vctk_records() -> list[Record]:
    genders = {}
    for line in SPEAKERS.read_text().splitlines()[1:]:
        path, speaker, gender = line.split("\t")[:3]
        genders[speaker] = gender
    out = []
    for path in corpus_files("vctk"):
        info = sf.info(path)
        out.append(Record(audio_filepath=str(path), duration=info.duration, speaker=path.parent.name,
                          sample_rate=info.samplerate, extra={"gender": genders[path.parent.name]}))
    return out


def test_contribution_bounding_keeps_the_first_records_of_each_speaker(vctk_records):
    kept = bound_contributions(vctk_records, 3)
    assert len(kept) == 12
    assert {r.speaker for r in kept} == {r.speaker for r in vctk_records}
    assert kept[:3] == [r for r in vctk_records if r.speaker == kept[0].speaker][:3]


def test_statistics_are_close_at_high_epsilon_and_grouped(vctk_records):
    stats = [parse_statistic(s) for s in ("count", "duration", "histogram:duration:3,5", "mean:duration:0:10")]
    out = release(vctk_records, stats, epsilon=5000.0, max_per_speaker=4, group_by="gender", groups=["F", "M"],
                  rng=SecureRandom("stats"))
    kept = bound_contributions(vctk_records, 4)
    for gender in ("F", "M"):
        mine = [r.duration for r in kept if r.extra["gender"] == gender]
        assert out.values["count"][gender] == pytest.approx(len(mine), abs=1)
        assert out.values["duration"][gender] == pytest.approx(sum(mine), abs=0.5)
        assert out.values["mean:duration"][gender] == pytest.approx(np.mean(mine), abs=0.05)
        hist = out.values["histogram:duration"][gender]
        assert sum(hist.values()) == pytest.approx(len(mine), abs=3)
        assert hist["[3,5)"] == pytest.approx(sum(3 <= d < 5 for d in mine), abs=1)
    assert out.values["count"]["(other)"] == pytest.approx(0, abs=1)
    entry = out.entry
    assert entry["unit"] == "speaker" and entry["max_per_speaker"] == 4 and entry["epsilon"] == 5000.0
    assert entry["sensitivity"]["l1:count"] == 4 and entry["sensitivity"]["l1:duration"] == 4 * 3000
    assert "one speaker's whole contribution" in describe(entry)


def test_statistics_noise_is_calibrated(vctk_records):
    """At epsilon 1 the count's noise has the Laplace scale 5 * 1 / 1: its spread over repeats shows it."""
    counts = [release(vctk_records, [parse_statistic("count")], epsilon=1.0, max_per_speaker=5,
                      rng=SecureRandom(i)).values["count"]["all"] for i in range(400)]
    assert np.mean(counts) == pytest.approx(20, abs=1.5)
    assert np.std(counts) == pytest.approx(np.sqrt(2) * 5, rel=0.15)


@pytest.mark.parametrize("text", ["", "sum", "histogram:duration", "histogram:duration:5,3", "histogram::1,2",
                                  "mean:duration:10:0", "mean:duration:a:b", "mean:duration:0:inf", "count:x"])
def test_bad_statistics(text):
    with pytest.raises(PrivspeechError) as err:
        parse_statistic(text)
    assert err.value.status == ExitStatus.USAGE


@pytest.mark.parametrize("kwargs, status", [
    ({"max_per_speaker": 0}, ExitStatus.USAGE),
    ({"epsilon": 0.0}, ExitStatus.USAGE),
    ({"group_by": "gender"}, ExitStatus.USAGE),
    ({"statistics": []}, ExitStatus.USAGE),
    ({"statistics": ["count", "count"]}, ExitStatus.USAGE),
])
def test_bad_release_arguments(vctk_records, kwargs, status):
    args = {"epsilon": 1.0, "max_per_speaker": 2, "statistics": ["count"], **kwargs}
    args["statistics"] = [parse_statistic(s) for s in args["statistics"]]
    with pytest.raises(PrivspeechError) as err:
        release(vctk_records, **args)
    assert err.value.status == status


def test_records_without_speaker_are_refused(vctk_records):
    anonymous = Record(audio_filepath=vctk_records[0].audio_filepath, duration=1.0)
    with pytest.raises(PrivspeechError) as err:
        release([*vctk_records, anonymous], [parse_statistic("count")], epsilon=1.0, max_per_speaker=2)
    assert err.value.status == ExitStatus.DATAERR


@pytest.fixture(scope="module")
def contour() -> np.ndarray:
    """F0 of a real utterance at a 5 ms hop: YIN, with frames below the energy gate unvoiced (0)."""
    y, sr = sf.read(corpus_files("vctk")[0])
    f0 = librosa.yin(y, fmin=70, fmax=400, sr=sr, frame_length=1024, hop_length=80)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=80)[0][:f0.size]
    return np.where(rms > 0.3 * np.median(rms), f0, 0.0)


@pytest.mark.slow
def test_intonation_keeps_shape_at_high_epsilon_and_loses_it_at_low(contour):
    params = {"target_mean_hz": 110.0, "segment": 50, "n_coeffs": 4, "clip": 0.5}
    out = dp_intonation(contour, epsilon=5000.0, rng=SecureRandom("f0"), **params)
    voiced = contour > 0
    assert out.f0.shape == contour.shape and np.all(out.f0[~voiced] == 0)
    assert np.exp(np.mean(np.log(out.f0[voiced]))) == pytest.approx(110.0, rel=0.1)

    def similarity(f0):
        return np.corrcoef(np.log(contour[voiced]), np.log(f0[voiced]))[0, 1]

    assert similarity(out.f0) > 0.5  # 4 coefficients per 0.25 s follow the (octave-jumpy) YIN contour
    noisy = [similarity(dp_intonation(contour, epsilon=5.0, rng=SecureRandom(i), **params).f0) for i in range(5)]
    assert np.mean(noisy) < similarity(out.f0) - 0.2
    entry = out.entry
    segments = int(np.ceil(contour.size / 50))
    assert entry["unit"] == "utterance" and entry["params"]["segments"] == segments
    assert entry["sensitivity"]["l1"] == segments * 4 * 2 * 64  # coefficients x range in 2^-7 octave steps
    q = np.exp(-1 / entry["scale"])
    assert out.noise_std_octaves == pytest.approx(np.sqrt(2 * q) / (1 - q) / 128, rel=1e-9)


@pytest.mark.slow
def test_intonation_at_low_epsilon_states_its_noise(contour):
    out = dp_intonation(contour, epsilon=1.0, target_mean_hz=200.0)
    assert out.entry["private"] and out.noise_std_octaves > 1  # honest: local DP on a whole utterance is noisy
    assert np.all(out.f0[contour > 0] > 0)
    assert "voiced/unvoiced pattern are not covered" in describe(out.entry)


def test_unvoiced_utterance_releases_nothing():
    out = dp_intonation(np.zeros(50), epsilon=1.0, target_mean_hz=100.0)
    assert out.entry is None and np.all(out.f0 == 0)


@pytest.mark.parametrize("f0, kwargs", [
    (np.full(10, 100.0), {"epsilon": 0}),
    (np.full(10, 100.0), {"target_mean_hz": -5}),
    (np.full(10, 100.0), {"n_coeffs": 0}),
    (np.full(10, 100.0), {"segment": 4, "n_coeffs": 5}),
    (np.full(10, 100.0), {"clip": 0.3}),
    (np.full(10, -100.0), {}),
    (np.full((2, 5), 100.0), {}),
    (np.array([100.0, np.inf]), {}),
])
def test_intonation_bad_inputs(f0, kwargs):
    with pytest.raises(PrivspeechError):
        dp_intonation(f0, **{"epsilon": 1.0, "target_mean_hz": 100.0, **kwargs})
