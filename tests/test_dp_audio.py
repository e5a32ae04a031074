"""Event-level DP noise on real speech: calibrated SNR, lattice output, clipping, ledger entry, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import corpus_files
from privspeech.dp.audio_noise import add_noise, parse_unit
from privspeech.dp.guarantee import describe
from privspeech.dp.rng import SecureRandom
from privspeech.errors import ExitStatus, PrivspeechError


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    y, sr = sf.read(corpus_files("vctk")[0], dtype="int16")
    return y, sr


def test_pcm_laplace_snr_matches_the_calibrated_variance(speech):
    y, sr = speech
    out = add_noise(y, epsilon=300.0, unit="sample")
    assert out.audio.dtype == np.int16 and out.audio.shape == y.shape
    scale = 65535 / 300
    q = np.exp(-1 / scale)
    variance = 2 * q / (1 - q) ** 2
    expected = 10 * np.log10(np.mean(y.astype(float) ** 2) / variance)
    assert out.expected_snr_db == pytest.approx(expected, abs=1e-9)
    assert out.snr_db == pytest.approx(expected, abs=0.2)  # 96 k samples: the measured power is within 1 %
    entry = out.entry
    assert entry["mechanism"] == "discrete-laplace" and entry["epsilon"] == 300.0 and entry["delta"] == 0.0
    assert entry["sensitivity"] == {"l1": 65535.0} and entry["lattice"] == "int16 sample grid"
    assert entry["private"] is True and "os.urandom" in entry["sampler"]
    words = describe(entry, sample_rate=sr)
    assert "does not hide who is speaking" in words and "300-DP" in words


def test_window_unit_scales_the_sensitivity_and_the_noise(speech):
    y, _ = speech
    one = add_noise(y, epsilon=4000.0, unit="sample", rng=SecureRandom(1))
    window = add_noise(y, epsilon=4000.0, unit="window:160", rng=SecureRandom(1))
    assert window.entry["sensitivity"]["l1"] == 160 * 65535 and window.entry["unit"] == "window:160"
    assert window.entry["scale"] == pytest.approx(160 * one.entry["scale"])
    assert window.expected_snr_db == pytest.approx(one.expected_snr_db - 20 * np.log10(160), abs=0.01)
    assert "160 consecutive samples" in describe(window.entry, sample_rate=16000)


def test_float_audio_is_released_on_its_grid_and_clipped(speech):
    y, _ = speech
    loud = np.clip(y.astype(np.float32) / 32768 * 8, -1.5, 1.5)  # beyond full scale: clipped before noise
    out = add_noise(loud, epsilon=50.0, grid_bits=12, rng=SecureRandom(2))
    assert out.audio.dtype == np.float32
    assert np.all(np.abs(out.audio) <= 1.0)
    steps = out.audio.astype(np.float64) * 2**12
    assert np.array_equal(steps, np.rint(steps))
    assert np.mean(np.abs(out.audio) == 1.0) > 0.01  # clipping (post-processing) was needed and done
    assert out.entry["sensitivity"] == {"l1": 2.0**13} and out.entry["private"] is False
    assert "NOT PRIVATE" in describe(out.entry)


def test_pcm_output_is_integer_and_saturates(speech):
    y, _ = speech
    out = add_noise(y, epsilon=2.0, rng=SecureRandom(3))  # noise far larger than speech
    assert out.audio.dtype == np.int16
    assert out.audio.min() == -32768 and out.audio.max() == 32767
    assert out.snr_db < 0 and out.expected_snr_db < out.snr_db  # clipping removes some noise power


def test_gaussian_from_epsilon_delta_on_stereo(speech):
    y, _ = speech
    stereo = np.stack([y, y[::-1]], axis=1)
    out = add_noise(stereo, epsilon=500.0, delta=1e-6, mechanism="gaussian", unit="window:4", rng=SecureRandom(4))
    entry = out.entry
    assert out.audio.shape == stereo.shape and entry["channels"] == 2
    assert entry["mechanism"] == "discrete-gaussian" and entry["epsilon"] <= 500.0 and entry["delta"] == 1e-6
    assert entry["sensitivity"]["l2"] == pytest.approx(np.sqrt(8) * 65535)
    assert entry["sigma"] ** 2 == pytest.approx(8 * 65535**2 / (2 * entry["rho"]))
    assert out.snr_db == pytest.approx(out.expected_snr_db, abs=0.2)
    assert "zCDP" in describe(entry)


@pytest.mark.parametrize("unit, window", [("sample", 1), ("window:1", 1), ("window:480", 480)])
def test_units(unit, window):
    assert parse_unit(unit) == window


@pytest.mark.parametrize("kwargs, status", [
    ({"epsilon": 0.0}, ExitStatus.USAGE),
    ({"epsilon": -3.0}, ExitStatus.USAGE),
    ({"epsilon": float("nan")}, ExitStatus.USAGE),
    ({"epsilon": 1.0, "unit": "frame"}, ExitStatus.USAGE),
    ({"epsilon": 1.0, "unit": "window:0"}, ExitStatus.USAGE),
    ({"epsilon": 1.0, "unit": "window:-4"}, ExitStatus.USAGE),
    ({"epsilon": 1.0, "unit": "window:"}, ExitStatus.USAGE),
    ({"epsilon": 1.0, "mechanism": "gaussian"}, ExitStatus.USAGE),
    ({"epsilon": 1.0, "rng": np.random.default_rng(0)}, ExitStatus.USAGE),
])
def test_bad_parameters(speech, kwargs, status):
    with pytest.raises(PrivspeechError) as err:
        add_noise(speech[0][:1000], **kwargs)
    assert err.value.status == status


@pytest.mark.parametrize("audio, kwargs", [
    (np.array([0.1, np.nan, 0.2]), {}),
    (np.array([0.1, np.inf]), {}),
    (np.zeros(10, dtype=np.int8), {}),
    (np.zeros(0, dtype=np.int16), {}),
    (np.zeros((2, 2, 2), dtype=np.int16), {}),
    ([1, 2, 3], {}),
])
def test_bad_audio_is_a_data_error(audio, kwargs):
    with pytest.raises(PrivspeechError) as err:
        add_noise(audio, epsilon=1.0, **kwargs)
    assert err.value.status == ExitStatus.DATAERR


@pytest.mark.parametrize("bits", [0, 25, 2.5])
def test_bad_grid(bits):
    with pytest.raises(PrivspeechError) as err:
        add_noise(np.zeros(10), epsilon=1.0, grid_bits=bits)
    assert err.value.status == ExitStatus.USAGE
