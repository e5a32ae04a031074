"""EER, DET points, trials and the speaker bootstrap, checked against theory and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.evaluate import metrics


def gaussian_scores(d_prime: float, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    scores = np.concatenate((rng.normal(d_prime, 1.0, n), rng.normal(0.0, 1.0, n)))
    return scores, np.arange(2 * n) < n


@pytest.mark.parametrize("d_prime", [0.5, 1.5, 3.0])
def test_eer_matches_theory_for_equal_variance_gaussians(d_prime):
    scores, target = gaussian_scores(d_prime, 200_000)
    assert metrics.eer(scores, target) == pytest.approx(norm.cdf(-d_prime / 2), abs=0.004)


def brute_force_bracket(scores, target):
    """Scan every threshold: the EER lies between the FAR/FRR pair just before and just after they cross."""
    thresholds = np.concatenate((np.unique(scores), [np.inf]))
    far = np.array([(scores[~target] >= t).mean() for t in thresholds])
    frr = np.array([(scores[target] < t).mean() for t in thresholds])
    k = int(np.argmax(frr >= far))
    return min(far[k], frr[k - 1], frr[k]), max(far[k - 1], frr[k])


@pytest.mark.parametrize("seed", range(6))
def test_eer_lies_between_the_crossing_operating_points(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=300), 1)  # rounding makes ties
    target = rng.random(300) < 0.3
    scores[target] += 0.8
    low, high = brute_force_bracket(scores, target)
    assert low - 1e-12 <= metrics.eer(scores, target) <= high + 1e-12


def test_eer_extremes_and_invariances():
    scores, target = gaussian_scores(1.0, 2000)
    assert metrics.eer(np.where(target, 1.0, 0.0), target) == 0.0
    assert metrics.eer(np.where(target, 0.0, 1.0), target) == 1.0
    base = metrics.eer(scores, target)
    assert metrics.eer(np.exp(scores), target) == pytest.approx(base)  # only the ranking matters
    assert metrics.eer(-scores, ~target) == pytest.approx(base)
    assert metrics.eer(scores, target, weights=np.full(len(scores), 3.0)) == pytest.approx(base)
    twice = metrics.eer(np.concatenate((scores, scores[:500])), np.concatenate((target, target[:500])))
    weights = np.ones(len(scores))
    weights[:500] = 2
    assert metrics.eer(scores, target, weights=weights) == pytest.approx(twice)


def test_det_curve_is_every_operating_point_a_det_plot_can_show():
    """One point per distinct threshold, from the highest that rejects no target to the lowest that accepts no
    non-target (the points beyond lie at minus infinity on a DET plot's axes)."""
    scores, target = gaussian_scores(1.0, 500)
    scores = np.round(scores, 1)  # ties
    far, frr = metrics.det_curve(scores, target)
    thresholds = np.concatenate((np.unique(scores), [np.inf]))
    every_far = np.array([(scores[~target] >= t).mean() for t in thresholds])
    every_frr = np.array([(scores[target] < t).mean() for t in thresholds])
    first, last = np.flatnonzero(every_frr == 0)[-1], np.flatnonzero(every_far == 0)[0]
    np.testing.assert_allclose(far, every_far[first:last + 1])
    np.testing.assert_allclose(frr, every_frr[first:last + 1])
    assert frr[0] == 0 and far[-1] == 0


SCORES = st.lists(st.integers(-20, 20), min_size=1, max_size=40)  # small integers: many ties


@settings(deadline=None)
@given(SCORES, SCORES)
def test_eer_is_a_rate_symmetric_in_the_two_kinds_and_depends_on_ranks_only(target_scores, nontarget_scores):
    scores = np.array(target_scores + nontarget_scores, dtype=float)
    target = np.arange(len(scores)) < len(target_scores)
    value = metrics.eer(scores, target)
    low, high = brute_force_bracket(scores, target)
    assert 0 <= value <= 1 and low - 1e-12 <= value <= high + 1e-12
    assert metrics.eer(-scores, ~target) == pytest.approx(value, abs=1e-12)  # targets and non-targets swapped
    assert metrics.eer(np.exp(scores / 7) + scores ** 3, target) == value  # a strictly increasing transform


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.booleans(), st.integers(0, 3)), min_size=2, max_size=40))
def test_integer_weights_count_as_repeated_trials(rows):
    scores, target, weights = (np.array(column) for column in zip(*rows))
    target = target.astype(bool)
    assume(weights[target].any() and weights[~target].any())
    repeated = metrics.eer(np.repeat(scores, weights).astype(float), np.repeat(target, weights))
    assert metrics.eer(scores.astype(float), target, weights=weights) == pytest.approx(repeated, abs=1e-12)
    far, frr = metrics.det_curve(np.repeat(scores, weights).astype(float), np.repeat(target, weights))
    assert np.all(np.diff(far) <= 0) and np.all(np.diff(frr) >= 0) and far.min() >= 0 and frr.max() <= 1


@pytest.mark.parametrize("scores, target, message", [
    ([0.1, 0.2], [True, True], "both target and non-target"),
    ([0.1, 0.2], [False, False], "both target and non-target"),
    ([0.1, np.nan], [True, False], "finite"),
    ([0.1, 0.2, 0.3], [True, False], "one length"),
])
def test_eer_rejects_bad_inputs(scores, target, message):
    with pytest.raises(PrivspeechError, match=message) as info:
        metrics.eer(np.array(scores), np.array(target))
    assert info.value.status == ExitStatus.DATAERR


def labelled(n_speakers: int, per_speaker: int, spread: float, seed: int = 0, dim: int = 16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_speakers, dim))
    speakers = np.repeat(np.arange(n_speakers), per_speaker)
    vectors = centres[speakers] + spread * rng.normal(size=(len(speakers), dim))
    return metrics.Labelled.build(vectors, [f"s{s}" for s in speakers], [f"u{i}" for i in range(len(speakers))])


def test_trial_counts_within_and_across_sets():
    data = labelled(4, 10, 0.5)
    within = metrics.make_trials(data)
    assert (within.n_target, within.n_nontarget) == (4 * 45, 6 * 100)
    across = metrics.make_trials(data, data)
    assert (across.n_target, across.n_nontarget) == (2 * 4 * 45, 2 * 6 * 100)
    # a copy as the test set repeats every pair once in each order: the same EER
    assert metrics.eer(across.scores, across.target) == pytest.approx(metrics.eer(within.scores, within.target))


def test_attacks_are_also_scored_within_each_group():
    """Per-group figures come from the one set of trials, split: only trials with both sides in the group count."""
    from privspeech.evaluate import attacks

    clear, blurred = labelled(4, 5, 0.2, seed=1), labelled(4, 5, 3.0, seed=2)
    lone = labelled(1, 3, 0.2, seed=3)  # one speaker: target trials only, so never scored on its own
    parts = {"clear": clear, "blurred": blurred, "lone": lone}
    data = metrics.Labelled.build(np.vstack([p.vectors for p in parts.values()]),
                                  [f"{g}{s}" for g, p in parts.items() for s in p.speakers],
                                  [f"{g}{u}" for g, p in parts.items() for u in p.utterances],
                                  groups=[g for g, p in parts.items() for _ in range(len(p))])
    result = attacks.attack("ignorant", data, data, n_resamples=100)
    assert set(result.by_group) == {"clear", "blurred"} and result.by_gender == {}
    for name in ("clear", "blurred"):
        alone = attacks.attack(name, parts[name], parts[name], n_resamples=100)
        assert result.by_group[name] == alone.score
    assert result.by_group["clear"].eer < 0.05 < result.score.eer < result.by_group["blurred"].eer
    # within a group of 4 speakers x 5 utterances, as ordered (enroll, test) pairs of distinct utterances
    assert (result.by_group["clear"].n_target, result.by_group["clear"].n_nontarget) == (4 * 5 * 4, 20 * 15)
    assert result.score.n_target + result.score.n_nontarget == len(data) * (len(data) - 1)
    assert "by_group" in result.to_dict() and result.to_dict()["by_group"]["clear"]["eer"] == result.by_group["clear"].eer


def test_trials_score_by_cosine():
    data = labelled(3, 2, 0.3)
    trials = metrics.make_trials(data)
    unit = data.vectors / np.linalg.norm(data.vectors, axis=1, keepdims=True)
    rows, cols = np.triu_indices(6, 1)
    np.testing.assert_allclose(trials.scores, np.sum(unit[rows] * unit[cols], axis=1))


def test_labelled_takes_arrays_and_defaults_to_unknown_gender():
    data = metrics.Labelled.build(np.eye(3), np.array(["a", "a", "b"]), ["1", "2", "3"], np.array(["F", "F", "M"]))
    assert list(data.genders) == ["F", "F", "M"]
    assert list(metrics.Labelled.build(np.eye(2), ["a", "b"], ["1", "2"]).genders) == ["", ""]


def test_labelled_rejects_mismatched_labels():
    with pytest.raises(PrivspeechError, match="differ in length"):
        metrics.Labelled.build(np.zeros((3, 4)), ["a", "b"], ["1", "2", "3"])
    with pytest.raises(PrivspeechError, match=r"shape \(n, d\)"):
        metrics.Labelled.build(np.zeros(3), ["a", "b", "c"], ["1", "2", "3"])


@pytest.mark.slow
def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    trials = metrics.make_trials(labelled(30, 5, 1.4))
    point = metrics.eer(trials.scores, trials.target)
    low, high, used = metrics.bootstrap_eer(trials, n_resamples=300, seed=7)
    assert 0 < low < point < high < 1 and used == 300
    assert metrics.bootstrap_eer(trials, n_resamples=300, seed=7) == (low, high, used)
    narrow = metrics.bootstrap_eer(trials, n_resamples=300, confidence=0.5, seed=7)
    assert low <= narrow[0] <= narrow[1] <= high


def test_bootstrap_rejects_bad_settings():
    trials = metrics.make_trials(labelled(3, 3, 0.5))
    with pytest.raises(PrivspeechError) as info:
        metrics.bootstrap_eer(trials, n_resamples=0)
    assert info.value.status == ExitStatus.USAGE
    with pytest.raises(PrivspeechError):
        metrics.bootstrap_eer(trials, confidence=1.0)


def nuisance(n_speakers: int, seed: int) -> metrics.Labelled:
    """Speakers differ in 4 of 32 dimensions; a nuisance (say, the channel) of larger spread varies the other 28."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((n_speakers, 32))
    centres[:, :4] = rng.normal(size=(n_speakers, 4))
    speakers = np.repeat(np.arange(n_speakers), 6)
    vectors = centres[speakers] + 0.1 * rng.normal(size=(len(speakers), 32))
    vectors[:, 4:] += 2 * rng.normal(size=(len(speakers), 28))
    return metrics.Labelled.build(vectors, [f"{seed}-{s}" for s in speakers],
                                  [f"{seed}-{i}" for i in range(len(speakers))])


def test_lda_back_end_learns_from_other_speakers_to_ignore_the_nuisance():
    from privspeech.evaluate.backend import LDA

    training, test = nuisance(30, seed=1), nuisance(10, seed=2)
    lda = LDA.fit(training)
    assert lda.projection.shape == (32, 29) and LDA.fit(training, dim=4).projection.shape == (32, 4)
    np.testing.assert_allclose(np.linalg.norm(lda.transform(test.vectors), axis=1), 1.0)
    plain, projected = metrics.make_trials(test), metrics.make_trials(lda.apply(test))
    assert metrics.eer(projected.scores, projected.target) < metrics.eer(plain.scores, plain.target) - 0.2


@pytest.mark.parametrize("data, dim, status", [
    (labelled(1, 5, 0.5), None, ExitStatus.DATAERR),  # one speaker
    (labelled(5, 1, 0.5), None, ExitStatus.DATAERR),  # no speaker with two utterances
    (labelled(5, 3, 0.5), 5, ExitStatus.USAGE),  # at most speakers - 1
])
def test_lda_back_end_refuses_what_it_cannot_fit(data, dim, status):
    from privspeech.evaluate.backend import LDA

    with pytest.raises(PrivspeechError) as info:
        LDA.fit(data, dim=dim)
    assert info.value.status == status
