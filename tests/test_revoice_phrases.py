"""revoice's fitting, with no models: pauses of 200 ms or more end a phrase, no phrase of several words is longer
than MAX_PHRASE_S, and the keyed targets are adapted to the synthetic voice."""

import numpy as np
import pytest

from privspeech.voice.revoice.fit import LOW_FORMANT_SCALE, MAX_PHRASE_S, PAUSE_S, for_voice, phrases
from privspeech.voice.revoice.recognize import Word
from privspeech.voice.targets import FORMANT_SCALE, Target


def words(*spans):
    return [Word(f"w{i}", start, end, 0.9) for i, (start, end) in enumerate(spans)]


def test_a_pause_ends_a_phrase_and_a_shorter_gap_does_not():
    found = phrases(words((0.0, 0.3), (0.3 + PAUSE_S - 0.01, 0.8), (0.8 + PAUSE_S, 1.2)))
    assert [(p.text, p.start, p.end) for p in found] == [("w0 w1", 0.0, 0.8), ("w2", 1.0, 1.2)]


def test_a_long_phrase_is_cut_at_its_longest_gaps():
    spans = [(i * 0.5, i * 0.5 + 0.45) for i in range(48)]  # 24 s of words 50 ms apart
    spans[10] = (spans[10][0] + 0.1, spans[10][1])  # the longest gap: before word 10
    found = phrases(words(*spans))
    assert found[0].text.split()[-1] == "w9" and found[1].text.split()[0] == "w10"
    assert all(p.end - p.start <= MAX_PHRASE_S for p in found) and sum(len(p.text.split()) for p in found) == 48
    assert phrases(words((0.0, 12.0)))[0].end == 12.0  # one long word stays whole


def test_touching_words_are_cut_at_a_clause_end_then_near_the_middle():
    touching = [Word(f"w{i}", i * 0.5, (i + 1) * 0.5, 0.9) for i in range(24)]  # 12 s, no gaps (as Whisper times)
    halves = phrases(touching)
    assert [len(p.text.split()) for p in halves] == [12, 12]  # not one word peeled off the front
    touching[5] = Word("w5,", 2.5, 3.0, 0.9)
    assert [len(p.text.split()) for p in phrases(touching)] == [6, 18]  # the clause's end wins over the middle


def test_no_words_no_phrases():
    assert phrases([]) == []


def test_low_targets_keep_the_voice_within_a_man_s_formants_and_high_ones_are_as_drawn():
    drawn = [Target(120.0, 0.2, 1.0 / s, 0.0) for s in np.geomspace(*FORMANT_SCALE, 9)]
    moved = [for_voice(t).formant_scale for t in drawn]
    assert moved[0] == pytest.approx(LOW_FORMANT_SCALE[1]) and moved[-1] == pytest.approx(LOW_FORMANT_SCALE[0])
    assert all(a > b for a, b in zip(moved, moved[1:]))  # the stronger the drawn lowering, the lower
    high = Target(210.0, 0.2, 1.2, 0.5)
    assert for_voice(high) == high
