"""`privspeech anonymize` end to end on real corpus files."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLES, VCTK, no_temp_files, packages_imported, records, run_cli
from privspeech.keys import generate, load_key_file, write_key_file


def corpus_tree(tmp_path):
    src = tmp_path / "calls"
    for name in ("p225/p225_003.wav", "p226/p226_005.wav"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(VCTK / name, src / name)
    return src


@pytest.mark.slow
def test_folder_to_manifest_with_pseudonymous_speakers(tmp_path, cli):
    src = corpus_tree(tmp_path)
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    key, _ = load_key_file(key_file)
    scanned = cli(["scan", src, "--speaker-from", "dir"])
    assert scanned.exit_code == 0
    result = cli(["anonymize", "-k", key_file, "--out-dir", tmp_path / "anon", "-j", "1", "-q"], input=scanned.stdout)
    assert result.exit_code == 0, result.stderr
    out = sorted(records(result.stdout), key=lambda r: r["id"])
    # scan's ids are the paths under the scanned folder (speaker folder / file stem): each names its original
    assert [r["id"] for r in out] == ["p225/p225_003", "p226/p226_005"]
    assert [r["speaker"] for r in out] == [key.pseudonym("speaker", s) for s in ("p225", "p226")]
    for rec in out:
        op = rec["privspeech"]["ops"][-1]
        assert op["op"] == "anonymize" and op["method"] == "world" and op["level"] == "speaker"
        assert op["key"] == key.fingerprint and op["version"] == "world-8" and op["settings"]["f0_method"] == "rapt"
        assert op["settings"]["strength"] == "balanced" and "checks" not in op  # balanced runs no checks
        y, sr = sf.read(tmp_path / "anon" / rec["audio_filepath"]) if not rec["audio_filepath"].startswith("/") \
            else sf.read(rec["audio_filepath"])
        original = sf.info(src / f"{rec['id']}.wav")  # the same length as its original, at the same rate
        assert sr == original.samplerate == 16000 and y.shape[0] == original.frames
    text = result.stdout + result.stderr
    assert key.material.hex() not in text
    assert no_temp_files(tmp_path / "anon")


def test_single_file_is_deterministic_with_a_key_and_keeps_the_format(tmp_path, cli):
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    src = VCTK / "p227" / "p227_005.wav"
    outs = []
    for name in ("a.wav", "b.wav"):
        result = cli(["anonymize", src, "-o", tmp_path / name, "-k", key_file, "--level", "utterance",
                      "--method", "mcadams"])
        assert result.exit_code == 0, result.stderr
        assert result.stdout == ""
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    info, original = sf.info(tmp_path / "a.wav"), sf.info(src)
    assert (info.frames, info.samplerate, info.channels, info.subtype) == \
        (original.frames, original.samplerate, original.channels, original.subtype)


@pytest.mark.slow
def test_separate_runs_give_byte_identical_output_at_8k(tmp_path):
    """Determinism across processes: below 16 kHz WORLD's D4C voicing check read uninitialised memory, and
    about one run in 20 came out whispered."""
    import soxr

    y, sr = sf.read(VCTK / "p226" / "p226_003.wav")
    src = tmp_path / "in.wav"
    sf.write(src, soxr.resample(y[: int(2.5 * sr)], sr, 8000), 8000, subtype="PCM_16")
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    outs = set()
    for i in range(4):
        result = run_cli(["anonymize", src, "-o", tmp_path / f"{i}.wav", "-k", key_file])
        assert result.returncode == 0, result.stderr
        outs.add((tmp_path / f"{i}.wav").read_bytes())
    assert len(outs) == 1


@pytest.mark.slow
def test_without_a_key_the_run_warns_and_is_unlinkable(tmp_path):
    src = VCTK / "p228" / "p228_005.wav"
    first = run_cli(["anonymize", src, "-o", tmp_path / "a.wav", "--level", "utterance", "-m", "mcadams"])
    second = run_cli(["anonymize", src, "-o", tmp_path / "b.wav", "--level", "utterance", "-m", "mcadams"])
    assert first.returncode == second.returncode == 0
    assert b"fresh key" in first.stderr
    assert (tmp_path / "a.wav").read_bytes() != (tmp_path / "b.wav").read_bytes()


@pytest.mark.slow
def test_long_file_streams_through_blocks(tmp_path, cli):
    """A 40 s file (more than one 30 s segment) goes through the block path with its exact length."""
    y = np.concatenate([sf.read(p)[0] for p in sorted((VCTK / "p227").glob("*.wav"))[:6]])
    sf.write(tmp_path / "long.wav", y, 16000, subtype="PCM_16")
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    result = cli(["anonymize", tmp_path / "long.wav", "-o", tmp_path / "out.wav", "-k", key_file,
                  "--emit-manifest"])
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result.stdout)
    assert sf.info(tmp_path / "out.wav").frames == y.size
    assert rec["duration"] == round(y.size / 16000, 6)


def test_f0_method_rapt_is_accepted_and_recorded(tmp_path, cli):
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    src = SAMPLES / "jackson" / "jackson_take00.wav"
    result = cli(["anonymize", src, "-o", tmp_path / "out.wav", "-k", key_file, "--f0-method", "rapt",
                  "--emit-manifest", "-q"])
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result.stdout)
    op = rec["privspeech"]["ops"][-1]
    assert op["method"] == "world" and op["settings"]["f0_method"] == "rapt"
    assert sf.info(tmp_path / "out.wav").frames == sf.info(src).frames
    bad = cli(["anonymize", src, "-o", tmp_path / "x.wav", "--f0-method", "yin"])
    assert bad.exit_code == 2 and "dio, harvest, rapt" in bad.stderr


def test_bad_options_exit_2_and_write_nothing(tmp_path, cli):
    src = VCTK / "p225" / "p225_003.wav"
    for args in (["--method", "psola"], ["--level", "corpus"], ["--intonation", "5"],
                 ["--method", "mcadams", "--f0-method", "harvest"]):
        result = cli(["anonymize", src, "-o", tmp_path / "x.wav", *args])
        assert result.exit_code == 2, (args, result.stderr)
    assert not (tmp_path / "x.wav").exists()
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    bad = cli(["anonymize", not_audio, "-o", tmp_path / "x.wav"])
    assert bad.exit_code == 65 and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.wav").exists()


def test_a_file_without_speaker_id_is_its_own_speaker(tmp_path, cli):
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    result = cli(["anonymize", VCTK / "p225" / "p225_003.wav", "-o", tmp_path / "x.wav", "-k", key_file])
    assert result.exit_code == 0 and "no speaker id" in result.stderr
    assert sf.info(tmp_path / "x.wav").frames == sf.info(VCTK / "p225" / "p225_003.wav").frames


@pytest.mark.slow
def test_a_world_run_imports_only_what_world_needs(tmp_path):
    """Start-up (issue 26): each method's libraries load when it runs. A world conversion imports no scipy
    (mcadams' scipy.signal was 0.8 s of a 1.4 s run), librosa or numba, and without --dp-epsilon not the
    DP generator's cipher; the anonymize stage itself imports neither method."""
    out = tmp_path / "a.wav"
    proc, imported = packages_imported(["anonymize", VCTK / "p225" / "p225_003.wav", "-o", out, "--method", "world",
                                        "--level", "utterance", "-q"])
    assert proc.returncode == 0, proc.stderr.decode()
    assert {"pyworld", "pysptk", "soundfile"} <= imported
    heavy = {"scipy", "librosa", "numba", "cryptography", "rich"}
    assert not imported & heavy, imported & heavy
    assert sf.info(out).frames == sf.info(VCTK / "p225" / "p225_003.wav").frames
    code = ("import sys, privspeech.cli.app, privspeech.stages.anonymize; "
            "print(*[m for m in ('privspeech.voice.world', 'privspeech.voice.mcadams', 'pyworld', 'librosa')"
            " if m in sys.modules])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == []
