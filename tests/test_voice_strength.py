"""world's strength presets and its per-recording checks (noisy or narrowband recordings, a converted voice that lost
its voicing), on real recordings: sample_audio/ and a noisy utterance of the hard set in tests/data/."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from conftest import DATA, SAMPLES, records
from privspeech.keys import SecretKey, write_key_file
from privspeech.voice import world
from privspeech.voice.stream import VoiceStream

KEY = SecretKey(bytes(range(32)))
NOISY = DATA / "babble-3486-166424-0000b.flac"


def convert(x: np.ndarray, sr: int, speaker: str, **settings) -> tuple[np.ndarray, world.WorldVoice]:
    stream = VoiceStream(sr=sr, channels=1, key=KEY, speaker=speaker, **settings)
    return np.concatenate([stream.process(x), stream.flush()]), stream.voices[0]


def lost_voicing(x: np.ndarray, y: np.ndarray, sr: int) -> float:
    voiced = world.track_f0(x, sr=sr, settings=world.WorldSettings()) > 0
    heard = world.track_f0(y, sr=sr, settings=world.WorldSettings()) > 0
    return float(np.mean(~heard[voiced]))


@pytest.mark.parametrize("strength", [s if s == "balanced" else pytest.param(s, marks=pytest.mark.slow)
                                      for s in world.STRENGTHS])
def test_each_strength_reaches_the_manifest(strength, tmp_path, cli):
    write_key_file(tmp_path / "anon.key", KEY)  # a fixed key: with it no check fires on this clean recording
    result = cli(["anonymize", SAMPLES / "p225" / "p225_003.wav", "-o", tmp_path / "out.wav", "--strength", strength,
                  "-k", tmp_path / "anon.key", "--emit-manifest", "-q"])
    assert result.exit_code == 0, result.stderr
    op = records(result.stdout)[-1]["privspeech"]["ops"][-1]
    assert op["version"] == world.VERSION and op["settings"]["strength"] == strength
    assert {name: op["settings"][name] for name in world.PRESETS[strength]} == world.PRESETS[strength]
    # the checks' findings are recorded where they run (light), and nothing is claimed where they do not
    assert op.get("checks") == ({"degraded": False, "lost_voicing": False} if strength == "light" else None)


def test_settings_given_win_over_the_preset():
    assert world.WorldSettings(strength="strong", timbre_db=8.0).timbre_db == 8.0
    assert world.WorldSettings(strength="balanced", fallback=True).fallback is True
    assert world.WorldSettings() == world.WorldSettings(strength="balanced", **world.PRESETS["balanced"])


def test_an_unknown_strength_is_a_usage_error_naming_the_choices(tmp_path, cli):
    result = cli(["anonymize", SAMPLES / "p225" / "p225_003.wav", "-o", tmp_path / "out.wav", "--strength", "max"])
    assert result.exit_code == 2 and "light, balanced, strong" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.wav").exists()
    result = cli(["anonymize", SAMPLES / "p225" / "p225_003.wav", "-o", tmp_path / "out.wav", "--strength", "light",
                  "--method", "mcadams"])
    assert result.exit_code == 2 and "--strength applies to --method world only" in result.stderr


@pytest.mark.slow
def test_a_converted_voice_that_lost_its_voicing_falls_back_to_a_gentler_target(tmp_path, cli):
    x, sr = sf.read(NOISY)
    full, voice_full = convert(x, sr, "3486")
    gentle, voice = convert(x, sr, "3486", strength="light")
    # this key's full conversion loses over half the voiced frames of this noisy recording: light's check fires
    assert lost_voicing(x, full, sr) > world.FALLBACK_LOST_VOICING
    assert voice.fell_back and not voice_full.fell_back
    assert voice.target.f0_mean_hz == voice_full.target.f0_mean_hz
    assert voice.target.formant_scale == pytest.approx(voice_full.target.formant_scale
                                                       ** world.FALLBACK_FORMANT_POWER)
    assert lost_voicing(x, gentle, sr) < lost_voicing(x, full, sr) - 0.05
    # and the record says so
    write_key_file(tmp_path / "anon.key", KEY)
    result = cli(["scan", NOISY, "--speaker-from", "regex:(?P<speaker>3486)"])
    assert result.exit_code == 0, result.stderr
    result = cli(["anonymize", "-k", tmp_path / "anon.key", "--strength", "light", "--out-dir", tmp_path / "anon",
                  "-q"], input=result.stdout)
    assert result.exit_code == 0, result.stderr
    assert records(result.stdout)[0]["privspeech"]["ops"][-1]["checks"] == {"degraded": False, "lost_voicing": True}


@pytest.mark.slow
def test_clean_speech_passes_the_checks_unchanged():
    x, sr = sf.read(SAMPLES / "p226" / "p226_005.wav")
    light, voice = convert(x, sr, "p226", strength="light")
    balanced, _ = convert(x, sr, "p226")
    assert not voice.fell_back and not voice.degraded
    assert light.tobytes() == balanced.tobytes()


@pytest.mark.parametrize("case", ["8 kHz", pytest.param("telephone band at 16 kHz", marks=pytest.mark.slow)])
def test_narrowband_recordings_are_degraded_and_get_the_timbre_limit(case):
    if case == "8 kHz":
        x, sr = sf.read(SAMPLES / "jackson" / "jackson_take00.wav")
    else:
        x, sr = sf.read(SAMPLES / "p225" / "p225_003.wav")
        x = scipy.signal.sosfiltfilt(scipy.signal.butter(8, [300, 3400], "bandpass", fs=sr, output="sos"), x)
    _, voice = convert(x, sr, "someone", strength="light")
    assert voice.degraded and voice._timbre_limit_db == world.DEGRADED_TIMBRE_LIMIT_DB
    _, voice = convert(x, sr, "someone")
    assert not voice.degraded and voice._timbre_limit_db is None
