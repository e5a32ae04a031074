"""`privspeech evaluate` end to end: real manifests from `privspeech scan`, real anonymized files, real outputs."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("resemblyzer")

from privspeech import audio, keys, voice  # noqa: E402
from privspeech.manifest import Record, dumps  # noqa: E402

from conftest import SPEAKERS, VCTK, records, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two VCTK speakers, two files each, scanned; and their WORLD-anonymized versions with a manifest."""
    root = tmp_path_factory.mktemp("eval")
    for speaker in ("p225", "p226"):
        (root / "orig" / speaker).mkdir(parents=True)
        for path in sorted((VCTK / speaker).glob("*.wav"))[:2]:
            shutil.copyfile(path, root / "orig" / speaker / path.name)
    scanned = run_cli(["scan", root / "orig", "--speaker-from", "dir"])
    assert scanned.returncode == 0, scanned.stderr
    (root / "orig.jsonl").write_bytes(scanned.stdout)
    key, released = keys.generate(), []
    (root / "anon").mkdir()
    for row in records(scanned.stdout.decode()):
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


def test_evaluate_writes_report_and_plot(dataset, tmp_path):
    report, plot = tmp_path / "eval.json", tmp_path / "eval.png"
    result = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl", "--no-asr",
                      "--genders", SPEAKERS, "--resamples", "50", "--report", report, "--plot", plot])
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # stdout carries data only; the table goes to stderr
    assert b"EER ignorant" in result.stderr
    data = json.loads(report.read_text())
    # the informed attacker learns method and level from the manifest's ops
    assert [a["name"] for a in data["attacks"]] == ["original", "ignorant", "lazy-informed"]
    assert data["settings"]["anonymizer"]["method"] == "world" and data["counts"]["utterances"] == 4
    assert data["attacks"][1]["by_gender"].keys() == set()  # two speakers of different genders: no same-gender pairs
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_cli(["evaluate", dataset / "orig.jsonl", "--anonymized", dataset / "anon.jsonl", "--no-asr",
                     "--report", report])
    assert again.returncode == 73 and b"--force" in again.stderr


@pytest.mark.parametrize("args, status, message", [
    (["--method", "robot"], 2, b"unknown anonymization method"),
    (["--anonymized", "missing.jsonl"], 66, b"missing.jsonl"),
])
def test_evaluate_usage_errors(dataset, args, status, message):
    result = run_cli(["evaluate", dataset / "orig.jsonl", "--no-asr", *args], cwd=dataset)
    assert result.returncode == status and message in result.stderr


def test_evaluate_needs_speakers(dataset):
    result = run_cli(["evaluate", dataset / "orig", "--no-asr", "--method", "world"])
    assert result.returncode == 65 and b"--speaker-from" in result.stderr


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
