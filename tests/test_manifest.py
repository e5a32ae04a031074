import io
import json
from pathlib import Path

import pytest

from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.manifest import Provenance, Record, check_inside, dumps, read_jsonl, write_jsonl

FULL = {"audio_filepath": "anon/spk01/0003.wav", "duration": 3.21, "id": "spk01/0003", "speaker": "spk01",
        "sample_rate": 16000, "num_channels": 1, "text": "hello", "lang": "en",
        "privspeech": {"v": 1, "sha256": "a" * 64, "source": {"id": "spk01/0003", "hmac": "b" * 64},
                       "ops": [{"op": "anonymize", "method": "world", "at": "2026-11-22T10:02:11Z"}],
                       "created_at": "2026-11-22T10:02:11Z", "expires_at": "2027-02-20T10:02:11Z", "hold": False,
                       "future_field": 1}}


def test_round_trip_keeps_every_key(tmp_path):
    record = Record.from_dict(FULL, tmp_path)
    assert record.audio_filepath == str(tmp_path / "anon/spk01/0003.wav")
    out = record.to_dict(tmp_path)
    assert out == FULL


def test_nemo_keys_stay_top_level_and_privspeech_nested():
    line = json.loads(dumps(Record(audio_filepath="/x/a.wav", duration=1.0, id="a")))
    assert set(line) == {"audio_filepath", "duration", "id", "privspeech"}
    assert line["privspeech"]["v"] == 1 and line["privspeech"]["ops"] == []


def test_with_op_appends_without_touching_the_original():
    record = Record.from_dict(FULL)
    later = record.with_op("noise", epsilon=8.0, unit="window:160")
    assert len(record.privspeech.ops) == 1
    assert [op["op"] for op in later.privspeech.ops] == ["anonymize", "noise"]
    assert later.privspeech.ops[-1]["epsilon"] == 8.0 and "at" in later.privspeech.ops[-1]


@pytest.mark.parametrize("line, reason", [
    ("not json", "Expecting value"),
    ("[1, 2]", "must be a JSON object"),
    ('{"duration": 1}', "missing 'audio_filepath'"),
    ('{"audio_filepath": ""}', "missing 'audio_filepath'"),
    ('{"audio_filepath": "a.wav", "duration": -1}', "duration"),
    ('{"audio_filepath": "a.wav", "duration": "long"}', "duration"),
    ('{"audio_filepath": "a.wav", "sample_rate": 0}', "sample_rate"),
    ('{"audio_filepath": "a.wav", "speaker": 3}', "speaker"),
    ('{"audio_filepath": "a.wav", "privspeech": {"v": 2}}', "version"),
    ('{"audio_filepath": "a.wav", "privspeech": {"ops": [{"x": 1}]}}', "ops"),
    ('{"audio_filepath": "a.wav", "privspeech": {"expires_at": "tomorrow"}}', "RFC 3339"),
    ('{"audio_filepath": "a.wav", "privspeech": {"hold": "yes"}}', "hold"),
])
def test_bad_lines_report_their_line_number(line, reason):
    stream = io.StringIO('{"audio_filepath": "ok.wav"}\n\n' + line + "\n")
    reader = read_jsonl(stream, base_dir=None, name="m.jsonl")
    assert next(reader).audio_filepath == "ok.wav"
    with pytest.raises(PrivspeechError) as info:
        next(reader)
    assert info.value.status == ExitStatus.DATAERR
    assert info.value.message.startswith("m.jsonl:3: bad manifest line")
    assert reason in info.value.message


def test_skip_invalid_warns_and_goes_on():
    warned = []
    stream = io.StringIO('{"audio_filepath": "a.wav"}\n{oops\n{"audio_filepath": "b.wav"}\n')
    got = [r.audio_filepath for r in read_jsonl(stream, base_dir=None, skip_invalid=True, warn=warned.append)]
    assert got == ["a.wav", "b.wav"]
    assert len(warned) == 1 and ":2:" in warned[0]


def test_paths_written_relative_to_the_manifest_folder(tmp_path):
    record = Record(audio_filepath=str(tmp_path / "a" / "b.wav"))
    buffer = io.StringIO()
    assert write_jsonl(buffer, [record], base_dir=tmp_path) == 1
    assert json.loads(buffer.getvalue())["audio_filepath"] == "a/b.wav"
    again = next(read_jsonl(io.StringIO(buffer.getvalue()), base_dir=tmp_path))
    assert Path(again.audio_filepath) == tmp_path / "a" / "b.wav"


def test_absolute_paths_are_accepted_on_input(tmp_path):
    line = json.dumps({"audio_filepath": "/data/x.wav"})
    assert next(read_jsonl(io.StringIO(line), base_dir=tmp_path)).audio_filepath == "/data/x.wav"


def test_paths_escaping_the_root_are_rejected(tmp_path):
    (tmp_path / "in").mkdir()
    check_inside(str(tmp_path / "in" / "x.wav"), tmp_path)
    for bad in (str(tmp_path / ".." / "x.wav"), "/etc/passwd"):
        with pytest.raises(PrivspeechError) as info:
            check_inside(bad, tmp_path)
        assert info.value.status == ExitStatus.DATAERR


def test_provenance_defaults_are_written():
    assert Provenance().to_dict() == {"v": 1, "ops": [], "hold": False}
