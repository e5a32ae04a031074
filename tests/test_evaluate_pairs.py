"""Pairing originals with anonymized versions from real manifests, genders, and the anonymizer from ops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from privspeech import keys, voice
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.evaluate import attacks, pairs
from privspeech.manifest import Record, dumps, read_jsonl

from conftest import SPEAKERS, VCTK



def manifest(records: list[Record], folder: Path) -> list[Record]:
    """Write records to a real JSONL file and read them back, as the CLI does."""
    path = folder / "manifest.jsonl"
    path.write_text("".join(dumps(r, folder) for r in records), encoding="utf-8")
    with open(path, encoding="utf-8") as fh:
        return list(read_jsonl(fh, base_dir=folder, name=str(path)))


def originals(n: int = 3) -> list[Record]:
    files = sorted(VCTK.rglob("*.wav"))[:n]
    return [Record(str(p), id=f"{p.parent.name}/{p.stem}", speaker=p.parent.name) for p in files]


def released(records: list[Record], folder: Path, **op) -> list[Record]:
    out = []
    for record in records:
        dest = folder / Path(record.audio_filepath).name
        dest.write_bytes(Path(record.audio_filepath).read_bytes())
        copy = Record(str(dest), id=record.id, speaker="spk-pseudonym").with_op("anonymize", **op)
        copy.privspeech.source = {"id": record.id}
        out.append(copy)
    return out


def test_pairs_by_source_id_with_genders_and_text(tmp_path):
    orig = originals()
    orig[0].text = "hello"
    anon = manifest(released(orig[::-1], tmp_path, **voice.describe("world", "speaker")), tmp_path)
    genders = pairs.read_genders(SPEAKERS)
    utterances = pairs.from_records(manifest(orig, tmp_path / ".."), anon, genders=genders)
    assert [u.id for u in utterances] == [r.id for r in orig]
    assert all(Path(u.anonymized).parent == tmp_path and Path(u.anonymized).name == Path(u.original).name
               for u in utterances)
    assert [u.gender for u in utterances] == ["F"] * 3 and utterances[0].text == "hello"
    assert utterances[0].speaker == "p225"  # the original's speaker, not the released pseudonym


def test_unreleased_originals_are_left_out_with_a_warning(tmp_path):
    orig = originals()
    said = []
    utterances = pairs.from_records(orig, released(orig[:2], tmp_path), warn=said.append)
    assert len(utterances) == 2 and "1 original(s)" in said[0]


@pytest.mark.parametrize("change, message", [
    (lambda o, a: setattr(o[0], "speaker", None), "needs an 'id' and a 'speaker'"),
    (lambda o, a: setattr(o[1], "id", o[0].id), "duplicate record id"),
    (lambda o, a: a[0].privspeech.source.update(id="nobody"), "not among the originals"),
    (lambda o, a: a.clear(), "no anonymized record matches"),
])
def test_bad_pairings_are_refused(tmp_path, change, message):
    orig = originals()
    anon = released(orig, tmp_path)
    change(orig, anon)
    with pytest.raises(PrivspeechError, match=message) as info:
        pairs.from_records(orig, anon)
    assert info.value.status == ExitStatus.DATAERR


def test_genders_file_needs_its_columns(tmp_path):
    bad = tmp_path / "g.tsv"
    bad.write_text("who\tsex\np1\tF\n")
    with pytest.raises(PrivspeechError, match="'speaker' and 'gender'"):
        pairs.read_genders(bad)
    with pytest.raises(PrivspeechError) as info:
        pairs.read_genders(tmp_path / "missing.tsv")
    assert info.value.status == ExitStatus.NOINPUT


def test_from_folder_takes_speaker_from_parent_folder():
    utterances = pairs.from_folder(VCTK, genders={"p226": "M"})
    assert len(utterances) == 40 and utterances[10].id == "p226/p226_003"
    assert (utterances[10].speaker, utterances[10].gender, utterances[0].gender) == ("p226", "M", "")
    with pytest.raises(PrivspeechError):
        pairs.from_folder(VCTK, pattern="*.mp3")


def test_anonymizer_is_rebuilt_from_the_manifest_ops(tmp_path):
    orig = originals(1)
    settings = voice.describe("mcadams", "utterance", key=keys.generate())
    anon = manifest(released(orig, tmp_path, **settings), tmp_path)
    anonymizer = attacks.anonymizer_from_records(anon)
    assert attacks.describe(anonymizer) == {"function": "privspeech.voice.anonymize", "method": "mcadams",
                                             "level": "utterance"}
    y, sr = pairs.load(orig[0].audio_filepath)
    key = keys.generate()
    out = anonymizer(y, sr=sr, key=key, speaker="p225", utterance="u1")
    np.testing.assert_array_equal(out, voice.anonymize(y, sr=sr, key=key, utterance="u1", method="mcadams",
                                                       level="utterance"))


def test_anonymizer_from_ops_refuses_missing_or_mixed_configurations(tmp_path):
    orig = originals(2)
    plain = released(orig, tmp_path)
    plain[0].privspeech.ops.clear()
    with pytest.raises(PrivspeechError, match="no 'anonymize' entry"):
        attacks.anonymizer_from_records(plain)
    mixed = released(orig[:1], tmp_path, **voice.describe("world")) + released(orig[1:], tmp_path,
                                                                               **voice.describe("mcadams"))
    with pytest.raises(PrivspeechError, match="different settings"):
        attacks.anonymizer_from_records(mixed)
    with pytest.raises(PrivspeechError) as info:
        attacks.voice_anonymizer("robot")
    assert info.value.status == ExitStatus.USAGE
