"""The ledger through the real CLI (issue 21, item 6): figures per unit, never summed across units; releases on
one source recording add up whatever pseudonyms the runs drew; the keyed source speaker names the rows."""

from __future__ import annotations

import hashlib

import pytest
import soundfile as sf

from conftest import SAMPLES, records
from privspeech.keys import generate, load_key_file, write_key_file

pytestmark = pytest.mark.slow  # every test runs several real noise and budget batches


@pytest.fixture
def calls(tmp_path, cli):
    """p225 with two recordings (the second: the first 3 s of another take, a file of its own) and p226 with one,
    real speech, scanned without a key."""
    src = tmp_path / "calls"
    for speaker in ("p225", "p226"):
        (src / speaker).mkdir(parents=True)
    for path in (SAMPLES / "p225" / "p225_003.wav", SAMPLES / "p226" / "p226_005.wav"):
        (src / path.parent.name / path.name).write_bytes(path.read_bytes())
    y, sr = sf.read(SAMPLES / "p225" / "p225_003.wav", dtype="int16")
    sf.write(src / "p225" / "p225_take2.wav", y[: 3 * sr], sr, subtype="PCM_16")
    scanned = cli(["scan", src, "--speaker-from", "dir", "-q"])
    assert scanned.exit_code == 0, scanned.stderr
    return src, scanned.stdout


def lines(result) -> dict[tuple[str, str], dict]:
    return {(line["speaker"], line["unit"]): line for line in records(result.stdout)}


def test_two_runs_without_a_key_on_one_recording_add_up(calls, tmp_path, cli):
    """The issue's case: two `--dp-epsilon 5 --max-epsilon 8` runs without -k each pass alone (neither sees the
    other), but budget over both counts 10 per recording, whatever pseudonyms the runs drew; a run on the
    other's output is refused."""
    _, manifest = calls
    runs = [cli(["anonymize", "--dp-epsilon", "5", "--max-epsilon", "8", "--out-dir", tmp_path / f"a{i}", "-q"],
                input=manifest) for i in range(2)]
    assert [r.exit_code for r in runs] == [0, 0], runs[0].stderr
    pseudonyms = [{rec["speaker"] for rec in records(r.stdout)} for r in runs]
    assert len(pseudonyms[0]) == 2 and not pseudonyms[0] & pseudonyms[1]  # fresh per run: unlinkable outputs

    both = cli(["budget", "--max-epsilon", "8"], input=runs[0].stdout + runs[1].stdout)
    assert both.exit_code == 65 and "over --max-epsilon 8" in both.stderr
    got = lines(both)
    assert len(got) == 2 and {unit for _, unit in got} == {"utterance"}  # one speaker each, linked by recording
    for (speaker, _), line in got.items():
        assert " = " in speaker and line["epsilon"] == 10.0 and line["releases"] == 2 * line["recordings"]
    assert {line["recordings"] for line in got.values()} == {1, 2}

    chained = cli(["anonymize", "--dp-epsilon", "5", "--max-epsilon", "8", "--out-dir", tmp_path / "a2", "-q"],
                  input=runs[0].stdout)
    assert chained.exit_code == 65 and not (tmp_path / "a2").exists()
    assert "unit utterance: privacy budget exceeded: spent epsilon 5" in chained.stderr
    assert "bring it to 10" in chained.stderr


def test_window_noise_and_utterance_dp_are_held_apart(calls, tmp_path, cli):
    """A per-160-sample-window release and a per-utterance release are two figures, each held to the budget."""
    _, manifest = calls
    noised = cli(["noise", "--epsilon", "6", "--unit", "window:160", "--max-epsilon", "8", "--out-dir",
                  tmp_path / "n", "-q"], input=manifest)
    assert noised.exit_code == 0, noised.stderr
    anonymized = cli(["anonymize", "--dp-epsilon", "5", "--max-epsilon", "8", "--out-dir", tmp_path / "a", "-q"],
                     input=noised.stdout)
    assert anonymized.exit_code == 0, anonymized.stderr  # 5 in unit utterance: the 6 per window is another unit
    budget = cli(["budget", "--max-epsilon", "8"], input=anonymized.stdout)
    assert budget.exit_code == 0, budget.stderr
    got = lines(budget)
    assert sorted({unit for _, unit in got}) == ["utterance", "window:160"] and len(got) == 4
    assert {line["epsilon"] for (_, unit), line in got.items() if unit == "window:160"} == {6.0}
    assert {line["epsilon"] for (_, unit), line in got.items() if unit == "utterance"} == {5.0}
    again = cli(["noise", "--epsilon", "3", "--unit", "window:160", "--max-epsilon", "8", "--out-dir",
                 tmp_path / "n2"], input=anonymized.stdout)
    assert again.exit_code == 65 and "unit window:160" in again.stderr and "bring it to 9" in again.stderr


def test_a_release_shared_by_derived_records_counts_once(calls, tmp_path, cli):
    _, manifest = calls
    base = cli(["noise", "--epsilon", "2", "--unit", "window:160", "--out-dir", tmp_path / "n", "-q"], input=manifest)
    branches = [cli(["noise", "--epsilon", "1", "--unit", "window:160", "--out-dir", tmp_path / f"b{i}", "-q"],
                    input=base.stdout) for i in range(2)]
    assert [r.exit_code for r in (base, *branches)] == [0, 0, 0]
    got = lines(cli(["budget"], input=branches[0].stdout + branches[1].stdout))
    assert got["p225", "window:160"]["epsilon"] == 4.0  # 2 + 1 + 1 per recording, not 2 + 1 + 2 + 1
    assert got["p225", "window:160"]["recordings"] == 2 and got["p225", "window:160"]["releases"] == 6
    per_record = records(cli(["budget", "--per-record"], input=branches[0].stdout).stdout)
    assert {line["epsilon"] for line in per_record} == {3.0} and all("record" in line for line in per_record)


def test_the_keyed_source_speaker(calls, tmp_path, cli):
    """scan -k records a keyed pseudonym of each speaker (never the id, never an unkeyed hash); anonymize keeps
    it, and with a persistent key sets the same one when the input has none; budget names rows by it."""
    src, manifest = calls
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    key, _ = load_key_file(key_file)
    scan_keyed = cli(["scan", src, "--speaker-from", "dir", "-k", key_file, "-q"])
    scanned = records(scan_keyed.stdout)
    expected = {s: key.pseudonym("source-speaker", s, prefix="src-") for s in ("p225", "p226")}
    for rec in scanned:
        source_speaker = rec["privspeech"]["source"]["speaker"]
        assert source_speaker == expected[rec["speaker"]] and rec["speaker"] not in source_speaker
        assert hashlib.sha256(rec["speaker"].encode()).hexdigest()[:12] not in source_speaker
    other = tmp_path / "other.key"
    write_key_file(other, generate())
    rescanned = records(cli(["scan", src, "--speaker-from", "dir", "-k", other, "-q"]).stdout)
    assert {r["privspeech"]["source"]["speaker"] for r in rescanned}.isdisjoint(expected.values())

    kept = cli(["anonymize", "--dp-epsilon", "5", "--out-dir", tmp_path / "a", "-q"], input=scan_keyed.stdout)
    assert kept.exit_code == 0, kept.stderr
    assert {r["privspeech"]["source"]["speaker"] for r in records(kept.stdout)} == set(expected.values())
    assert set(speaker for speaker, _ in lines(cli(["budget"], input=kept.stdout))) == set(expected.values())

    keyed = cli(["anonymize", "-k", key_file, "--out-dir", tmp_path / "k", "-q"], input=manifest)
    assert {r["privspeech"]["source"]["speaker"] for r in records(keyed.stdout)} == set(expected.values())
    unkeyed = cli(["anonymize", "--out-dir", tmp_path / "u", "-q"], input=manifest)
    assert all("speaker" not in r["privspeech"]["source"] for r in records(unkeyed.stdout))
