"""Keyed pseudo-speaker draws and the manifest description of a conversion."""

from __future__ import annotations

import dataclasses
import json

import pytest

from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.keys import SecretKey, generate
from privspeech.voice import describe
from privspeech.voice import targets as T
from privspeech.voice.world import WorldSettings

KEYS = [SecretKey(bytes([i]) * 32) for i in range(64)]


def test_draws_depend_on_key_id_and_level_only():
    a = T.world_candidates(KEYS[3], level="speaker", ident="p225")
    assert a == T.world_candidates(SecretKey(bytes([3]) * 32), level="speaker", ident="p225")
    assert a != T.world_candidates(KEYS[4], level="speaker", ident="p225")
    assert a != T.world_candidates(KEYS[3], level="speaker", ident="p226")
    assert a != T.world_candidates(KEYS[3], level="utterance", ident="p225")
    alpha = T.mcadams_alpha(KEYS[3], level="speaker", ident="p225")
    assert alpha == T.mcadams_alpha(KEYS[3], level="speaker", ident="p225")
    assert alpha != T.mcadams_alpha(KEYS[3], level="speaker", ident="p226")


def _spans(values, lo, hi, *, margin=0.15):
    """All values in [lo, hi], reaching within `margin` of the span from both ends."""
    span = hi - lo
    return all(lo <= v <= hi for v in values) and min(values) < lo + margin * span and max(values) > hi - margin * span


def test_draws_spread_over_the_population_ranges():
    cands = [T.world_candidates(k, level="speaker", ident="spk01") for k in KEYS]
    assert _spans([c.low.f0_mean_hz for c in cands], *T.LOW_F0_HZ)
    assert _spans([c.high.f0_mean_hz for c in cands], *T.HIGH_F0_HZ)
    assert _spans([c.high.formant_scale for c in cands], *T.FORMANT_SCALE)
    assert _spans([1.0 / c.low.formant_scale for c in cands], *T.FORMANT_SCALE)
    spread_st = [t.f0_spread * 12.0 / 0.6931471805599453 for c in cands for t in (c.low, c.high)]
    assert _spans(spread_st, *T.F0_SPREAD_SEMITONES)
    assert _spans([c.high.tilt_db_per_octave for c in cands], -T.TILT_DB_PER_OCTAVE, T.TILT_DB_PER_OCTAVE)
    assert len({c.high for c in cands}) == len(cands)  # every key a different pseudo-speaker
    assert 16 < sum(c.default_high for c in cands) < 48
    alphas = [T.mcadams_alpha(k, level="speaker", ident="spk01") for k in KEYS]
    assert _spans(alphas, *T.MCADAMS_ALPHA)


@pytest.mark.parametrize("source_hz", [85.0, 112.0, 150.0, 158.0, 163.0, 185.0, 240.0])
def test_choice_takes_the_keyed_side_and_keeps_its_distance(source_hz):
    for key in KEYS[:16]:
        cands = T.world_candidates(key, level="speaker", ident="x")
        target = cands.choose(source_hz, min_semitones=4.0)
        gap = T.semitones(target.f0_mean_hz, source_hz)
        assert abs(gap) >= (4.0 if cands.cross else T.SAME_SIDE_MIN_SEMITONES) - 1e-9
        assert (target.formant_scale > 1.0) == (gap > 0)  # formants move the way F0 moves
        assert T.LOW_F0_HZ[0] - 1e-9 <= target.f0_mean_hz <= T.HIGH_F0_HZ[1] + 1e-9
        source_high = source_hz >= T.BOUNDARY_HZ
        drawn = cands.low if source_high == cands.cross else cands.high
        assert target.f0_spread == drawn.f0_spread and target.timbre == drawn.timbre
        if cands.cross:
            assert (gap > 0) != source_high
            assert target.formant_scale == drawn.formant_scale
        else:  # toward the other side
            assert (gap > 0) != source_high
            assert max(target.formant_scale, 1.0 / target.formant_scale) == cands.same_side_scale


def test_kind_of_move_is_a_keyed_coin_per_speaker():
    sides = [T.world_candidates(k, level="speaker", ident="spk01").cross for k in KEYS]
    assert 16 < sum(sides) < 48
    per_speaker = [T.world_candidates(KEYS[0], level="speaker", ident=f"spk{i:02d}").cross for i in range(64)]
    assert 16 < sum(per_speaker) < 48
    assert _spans([T.world_candidates(k, level="speaker", ident="spk01").same_side_scale for k in KEYS],
                  *T.SAME_SIDE_FORMANT_SCALE)


def test_choice_without_voiced_speech_uses_the_keyed_default():
    for key in KEYS[:8]:
        cands = T.world_candidates(key, level="speaker", ident="x")
        assert cands.choose(None, min_semitones=4.0) == (cands.high if cands.default_high else cands.low)


def test_uniforms_extend_in_counter_mode():
    many = T.uniforms(KEYS[0], "test", "m", 9)
    assert many[:4] == T.uniforms(KEYS[0], "test", "m", 4)
    assert all(0.0 <= u < 1.0 for u in many) and len(set(many)) == 9
    assert many != T.uniforms(KEYS[0], "other", "m", 9)


def test_describe_names_method_settings_and_key_never_secrets():
    key = generate()
    params = describe("world", "speaker", key, intonation=0.5, f0_method="harvest")
    expected_settings = dataclasses.asdict(WorldSettings(intonation=0.5, f0_method="harvest"))
    assert params == {"method": "world", "level": "speaker", "settings": expected_settings,
                      "key": key.fingerprint, "version": "world-8"}
    text = json.dumps(params)
    assert key.material.hex() not in text
    cands = T.world_candidates(key, level="speaker", ident="p225")
    for target in (cands.low, cands.high):
        for value in dataclasses.astuple(target):
            assert repr(value)[:8] not in text
    mc = describe("mcadams", "utterance", key)
    assert mc == {"method": "mcadams", "level": "utterance", "settings": {}, "key": key.fingerprint,
                  "version": "mcadams-1"}
    assert describe("world", "utterance", SecretKey(bytes(32), ephemeral=True))["key"] == "ephemeral"


@pytest.mark.parametrize("args, settings", [
    (("wavenet", "speaker"), {}),
    (("world", "person"), {}),
    (("world", "speaker"), {"f0_method": "yin"}),
    (("world", "speaker"), {"frame_period": 0.5}),
    (("world", "speaker"), {"intonation": -1.0}),
    (("world", "speaker"), {"min_f0_distance": 20.0}),
    (("world", "speaker"), {"timbre_db": 40.0}),
    (("world", "speaker"), {"pitch": 3}),
    (("mcadams", "speaker"), {"alpha": 0.7}),
])
def test_describe_refuses_bad_method_level_and_settings(args, settings):
    with pytest.raises(PrivspeechError) as err:
        describe(*args, generate(), **settings)
    assert err.value.status == ExitStatus.USAGE
