"""`privspeech scan` through the real CLI: records, options, streams and every bad input."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from privspeech import keys
from privspeech.timeutil import parse_ts

from conftest import DATA, REPO, SAMPLES, SPEAKERS, VCTK, records, run_cli


def test_scan_corpus_folder_gives_one_valid_record_per_audio_file(cli):
    result = cli(["scan", VCTK, "-j", "2", "--speaker-from", "dir"])
    assert result.exit_code == 0, result.stderr
    got = records(result.stdout)
    files = sorted(VCTK.rglob("*.wav"))
    assert [r["audio_filepath"] for r in got] == [str(f) for f in files]
    tsv = {line.split("\t")[0]: line.split("\t") for line in SPEAKERS.read_text().splitlines()[1:]}
    for rec, path in zip(got, files):
        row = tsv[str(path.relative_to(VCTK.parent))]
        assert rec["speaker"] == row[1] == path.parent.name
        assert rec["duration"] == pytest.approx(float(row[4]), abs=1e-3)
        assert rec["sample_rate"] == 16000 and rec["num_channels"] == 1
        assert rec["id"] == f"{path.parent.name}/{path.stem}"
        assert rec["privspeech"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        parse_ts(rec["privspeech"]["created_at"])


def test_sha256_matches_the_corpus_checksums(cli):
    sums = dict(reversed(line.split("  ", 1)) for line in (DATA / "SHA256SUMS").read_text().splitlines())
    result = cli(["scan", DATA / "fsdd-concat", "-j", "1"])
    for rec in records(result.stdout):
        assert sums[str(Path(rec["audio_filepath"]).relative_to(DATA))] == rec["privspeech"]["sha256"]


def test_flac_and_regex_speakers(cli):
    result = cli(["scan", DATA / "librispeech-train-clean-100" / "19", "--speaker-from", r"regex:(\d+)-\d+-\d+"])
    (rec,) = records(result.stdout)
    assert rec["speaker"] == "19" and rec["audio_filepath"].endswith(".flac")


def test_retain_sets_expiry_and_key_file_adds_keyed_source_hash(cli, tmp_path):
    key_path = tmp_path / "anon.key"
    key = keys.generate()
    keys.write_key_file(key_path, key)
    wav = VCTK / "p226" / "p226_003.wav"
    result = cli(["scan", wav, "--retain", "90d", "--key-file", key_path])
    (rec,) = records(result.stdout)
    meta = rec["privspeech"]
    assert (parse_ts(meta["expires_at"]) - parse_ts(meta["created_at"])).days == 90
    expected = key.hasher("source-hmac")
    expected.update(wav.read_bytes())
    assert meta["source"]["hmac"] == expected.hexdigest()
    assert meta["source"]["hmac"] != meta["sha256"] and meta["source"]["key"] == key.fingerprint
    assert key.material.hex() not in result.stdout + result.stderr


def test_retain_from_mtime(cli, tmp_path):
    wav = tmp_path / "old.wav"
    shutil.copy(VCTK / "p225" / "p225_003.wav", wav)
    os.utime(wav, (1_700_000_000, 1_700_000_000))
    (rec,) = records(cli(["scan", wav, "--retain", "P1D", "--retain-from-mtime"]).stdout)
    assert rec["privspeech"]["expires_at"] == "2023-11-15T22:13:20Z"


def test_hidden_non_audio_and_symlinks_are_skipped_with_counts(cli, tmp_path):
    src = VCTK / "p225" / "p225_003.wav"
    (tmp_path / "spk").mkdir()
    shutil.copy(src, tmp_path / "spk" / "a.wav")
    shutil.copy(src, tmp_path / "spk" / ".hidden.wav")
    (tmp_path / "spk" / "notes.txt").write_text("hello")
    (tmp_path / "spk" / "link.wav").symlink_to(src)
    (tmp_path / "linked_dir").symlink_to(VCTK / "p226")
    (tmp_path / "spk" / "sub").mkdir()
    shutil.copy(src, tmp_path / "spk" / "sub" / "b.wav")
    (tmp_path / ".cache").mkdir()  # hidden folders are passed over without a count
    shutil.copy(src, tmp_path / ".cache" / "c.wav")
    (tmp_path / "spk" / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    result = cli(["scan", tmp_path])
    assert [r["id"] for r in records(result.stdout)] == ["spk/a", "spk/sub/b"]
    assert "skipped 1 hidden, 1 non-audio, 3 symlinked files" in result.stderr
    result = cli(["scan", tmp_path, "--follow-symlinks"])
    assert len(records(result.stdout)) == 3 + 10
    assert "skipped 1 hidden, 1 non-audio, 1 special files" in result.stderr


def test_manifest_on_stdin_is_rescanned_relative_to_its_folder(tmp_path):
    manifest = SAMPLES / "manifest.jsonl"
    with open(manifest, "rb") as fh:
        proc = subprocess.run([sys.executable, "-m", "privspeech", "scan", "-q"], stdin=fh, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    got = records(proc.stdout.decode())
    want = records(manifest.read_text())
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert [r["privspeech"]["sha256"] for r in got] == [r["privspeech"]["sha256"] for r in want]
    assert got[3]["text"] == want[3]["text"]  # other keys survive a rescan


def test_stdout_redirected_to_a_file_gets_paths_relative_to_it(tmp_path):
    out = tmp_path / "sub" / "manifest.jsonl"
    out.parent.mkdir()
    with open(out, "w") as fh:
        subprocess.run([sys.executable, "-m", "privspeech", "scan", str(SAMPLES / "p225")], stdout=fh, check=True)
    (rec,) = records(out.read_text())
    assert not rec["audio_filepath"].startswith("/")
    assert (out.parent / rec["audio_filepath"]).resolve() == (SAMPLES / "p225" / "p225_003.wav").resolve()


def test_head_gets_records_at_once_and_a_broken_pipe_is_quiet():
    proc = subprocess.run(f"{sys.executable} -m privspeech scan -j 2 {DATA} | head -3", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert len(records(proc.stdout)) == 3
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr


def test_help_lists_scan_and_is_quick_to_import():
    code = "import sys, privspeech.cli.app; print('numpy' in sys.modules, 'soundfile' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    proc = run_cli(["--help"])
    assert proc.returncode == 0 and b"scan" in proc.stdout
    assert run_cli(["--version"]).stdout.decode().startswith("privspeech ")


# -- bad inputs -------------------------------------------------------------------------------------------

def _write(tmp_path, name, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize("name, payload", [
    ("empty.wav", b""),
    ("text.wav", b"this is a text file\n"),
    ("random.wav", bytes(range(256)) * 8),
    ("truncated.wav", (VCTK / "p225" / "p225_003.wav").read_bytes()[:40]),
])
def test_bad_audio_file_fails_that_record_only(cli, tmp_path, name, payload):
    bad = _write(tmp_path, name, payload)
    good = VCTK / "p225" / "p225_003.wav"
    result = cli(["scan", good, bad, "-j", "1"])
    assert result.exit_code == 1
    assert [r["id"] for r in records(result.stdout)] == ["p225_003"]
    (line,) = [ln for ln in result.stderr.splitlines() if "error" in ln]
    assert str(bad) in line and "Traceback" not in result.stderr
    alone = cli(["scan", bad, "--fail-fast"])
    assert alone.exit_code == 1 and alone.stdout == ""


def test_zero_length_recording(cli, tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0), 16000)
    result = cli(["scan", path])
    assert result.exit_code == 1 and "zero-length" in result.stderr


def test_lying_header_warns(cli, tmp_path):
    raw = (VCTK / "p225" / "p225_003.wav").read_bytes()
    path = _write(tmp_path, "cut.wav", raw[: len(raw) // 3])
    result = cli(["scan", path])
    assert result.exit_code == 0
    assert records(result.stdout)[0]["duration"] < 3


def test_missing_path_exits_66(cli, tmp_path):
    result = cli(["scan", tmp_path / "nope"])
    assert result.exit_code == 66 and "no such file" in result.stderr and result.stdout == ""


def test_folder_without_audio_exits_66(cli, tmp_path):
    (tmp_path / "readme.txt").write_text("no audio here")
    result = cli(["scan", tmp_path])
    assert result.exit_code == 66 and "no audio files found" in result.stderr


@pytest.mark.parametrize("line, lineno", [("{not json", 2), ('{"duration": 2}', 2), ('{"audio_filepath": 7}', 2)])
def test_bad_manifest_line_exits_65_with_its_number(cli, line, lineno):
    good = json.dumps({"audio_filepath": str(VCTK / "p225" / "p225_003.wav")})
    result = cli(["scan"], input=good + "\n" + line + "\n")
    assert result.exit_code == 65
    assert f"<stdin>:{lineno}: bad manifest line" in result.stderr and "--skip-invalid" in result.stderr
    skipped = cli(["scan", "--skip-invalid"], input=good + "\n" + line + "\n")
    assert skipped.exit_code == 0 and len(records(skipped.stdout)) == 1


def test_manifest_line_pointing_at_a_missing_file(cli, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "gone.wav"}) + "\n")
    result = cli(["scan", manifest])
    assert result.exit_code == 1 and "gone.wav: no such file" in result.stderr


def test_binary_garbage_on_stdin_is_refused(cli):
    result = cli(["scan"], input=b"\xff\xfe\x00garbage")
    assert result.exit_code == 65 and "not a UTF-8 JSONL manifest" in result.stderr


def test_bad_options_are_usage_errors(cli, tmp_path):
    assert cli(["scan", VCTK, "--retain", "soon"]).exit_code == 2
    assert cli(["scan", VCTK, "--speaker-from", "regex:("]).exit_code == 2
    assert cli(["scan", VCTK, "--speaker-from", "regex:abc"]).exit_code == 2
    assert cli(["scan", VCTK, "--shard", "3/2"]).exit_code == 2
    assert cli(["scan", VCTK, "--jobs", "0"]).exit_code == 2


def test_bad_key_file(cli, tmp_path):
    key = _write(tmp_path, "k", b"not a key\n")
    result = cli(["scan", VCTK / "p225", "--key-file", key])
    assert result.exit_code == 65 and "not a privspeech key file" in result.stderr


def test_unreadable_file_as_unprivileged_user(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    shared = Path(tempfile.mkdtemp(prefix="privspeech-perm-"))
    try:
        shared.chmod(0o755)
        locked = shared / "locked.wav"
        shutil.copy(VCTK / "p225" / "p225_003.wav", locked)
        locked.chmod(0o600)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "privspeech",
               "scan", str(locked)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=shared,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        if "Permission denied" in proc.stderr and "python" in proc.stderr.lower():
            pytest.skip("the unprivileged user cannot run this interpreter")
        assert proc.returncode == 1 and "permission denied" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        shutil.rmtree(shared)


def test_sigterm_mid_run_exits_130_without_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "privspeech", "scan", "-j", "1", str(DATA)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130)  # 0 only if the scan finished first
    assert b"Traceback" not in err
