import io
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from privspeech import audio, fsutil
from privspeech.errors import ExitStatus, PrivspeechError

from conftest import NOBODY, VCTK, as_nobody, no_temp_files

SPEECH = VCTK / "p225" / "p225_003.wav"


@pytest.fixture(scope="module")
def speech():
    data, sr = sf.read(SPEECH, always_2d=True)
    return data, sr


@pytest.mark.parametrize("fmt, subtype, suffix", [
    ("WAV", "PCM_U8", ".wav"), ("WAV", "PCM_16", ".wav"), ("WAV", "PCM_24", ".wav"), ("WAV", "PCM_32", ".wav"),
    ("WAV", "FLOAT", ".wav"), ("WAV", "DOUBLE", ".wav"), ("FLAC", "PCM_16", ".flac"), ("FLAC", "PCM_24", ".flac"),
    ("OGG", "VORBIS", ".ogg"),
])
@pytest.mark.parametrize("channels", [1, 2])
def test_reads_formats_subtypes_and_channels(tmp_path, speech, fmt, subtype, suffix, channels):
    data, sr = speech
    data = np.repeat(data, channels, axis=1) * (0.5 if channels == 2 else 1)
    path = tmp_path / f"in{suffix}"
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    loaded = audio.read(path)
    assert loaded.data.shape == (data.shape[0], channels)
    assert (loaded.info.sample_rate, loaded.info.channels, loaded.info.subtype) == (sr, channels, subtype)
    if subtype != "VORBIS":  # lossy: only the shape can be compared
        tolerance = {"PCM_U8": 1 / 64}.get(subtype, 1e-3)
        assert np.max(np.abs(loaded.data - data)) < tolerance


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_write_keeps_rate_channels_and_subtype_atomically(tmp_path, speech, subtype):
    data, sr = speech
    stereo = np.hstack([data, data * 0.5])
    dest = tmp_path / "out.wav"
    digest = audio.write(dest, stereo, sample_rate=sr, subtype=subtype)
    info = sf.info(dest)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (sr, 2, subtype, data.shape[0])
    assert digest == fsutil.sha256_file(dest)
    assert no_temp_files(tmp_path)


def test_write_refuses_to_overwrite_without_force(tmp_path, speech):
    data, sr = speech
    dest = tmp_path / "out.wav"
    audio.write(dest, data, sample_rate=sr)
    before = dest.read_bytes()
    with pytest.raises(PrivspeechError) as info:
        audio.write(dest, data * 0.1, sample_rate=sr)
    assert info.value.status == ExitStatus.CANTCREAT and dest.read_bytes() == before
    audio.write(dest, data * 0.1, sample_rate=sr, force=True)
    assert dest.read_bytes() != before and no_temp_files(tmp_path)


def test_failure_mid_write_leaves_nothing(tmp_path, speech):
    data, sr = speech
    dest = tmp_path / "out.wav"
    with pytest.raises(KeyboardInterrupt):
        with audio.open_output(dest, sample_rate=sr, channels=1) as (snd, _):
            snd.write(data[:1000])
            raise KeyboardInterrupt
    assert not dest.exists() and no_temp_files(tmp_path)


def test_flac_source_subtype_falls_back_for_wav_output(tmp_path):
    assert audio.output_format(tmp_path / "x.wav", "VORBIS") == ("WAV", "PCM_16")
    assert audio.output_format(tmp_path / "x.flac", "PCM_24") == ("FLAC", "PCM_24")
    assert audio.output_format("-", "PCM_16") == ("WAV", "PCM_16")


def test_reads_from_a_pipe_and_writes_to_one():
    """Audio through stdin and stdout of a real process (soundfile cannot seek a pipe; privspeech buffers)."""
    code = ("import sys; from privspeech import audio; a = audio.read('-'); "
            "audio.write('-', a.data * 0.5, sample_rate=a.info.sample_rate, subtype=a.info.subtype)")
    proc = subprocess.run([sys.executable, "-c", code], input=SPEECH.read_bytes(), capture_output=True, check=True)
    out, sr = sf.read(io.BytesIO(proc.stdout))
    src, _ = sf.read(SPEECH)
    assert sr == 16000 and out.shape == src.shape
    assert np.max(np.abs(out - src * 0.5)) < 1e-4


def _bad(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize("name, payload, words", [
    ("empty.wav", b"", "empty file"),
    ("text.wav", b"this is not audio at all\n" * 10, "not a readable audio file"),
    ("random.wav", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "not a readable"),
    ("truncated.wav", SPEECH.read_bytes()[:30], "not a readable audio file"),
])
def test_bad_files_are_refused_with_dataerr(tmp_path, name, payload, words):
    path = _bad(tmp_path, name, payload)
    with pytest.raises(PrivspeechError) as info:
        audio.read(path)
    assert info.value.status == ExitStatus.DATAERR and words in info.value.message
    assert str(path) in info.value.message


def test_zero_length_recording_is_refused(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 1)), 16000)
    with pytest.raises(PrivspeechError, match="zero-length"):
        audio.read(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_samples_are_refused(tmp_path, speech, value):
    data, sr = speech
    data = data.copy()
    data[100] = value
    path = tmp_path / "nan.wav"
    sf.write(path, data, sr, subtype="FLOAT")
    with pytest.raises(PrivspeechError, match="NaN or infinite"):
        audio.read(path)


def test_header_that_lies_about_length_is_read_with_a_warning(tmp_path):
    raw = SPEECH.read_bytes()
    path = _bad(tmp_path, "cut.wav", raw[: len(raw) // 2])
    loaded = audio.read(path)
    assert 0 < loaded.data.shape[0] < sf.info(SPEECH).frames
    assert loaded.warnings and "header declares" in loaded.warnings[0]


_READ_AS = """
import os, sys
from privspeech import audio
from privspeech.errors import PrivspeechError
try:
    audio.read(sys.argv[1])
except PrivspeechError as exc:
    print(os.geteuid(), int(exc.status), exc)
else:
    print(os.geteuid(), "read")
"""


def test_missing_unreadable_and_folder_inputs(tmp_path, public_tmp):
    with pytest.raises(PrivspeechError) as info:
        audio.read(tmp_path / "nope.wav")
    assert info.value.status == ExitStatus.NOINPUT
    with pytest.raises(PrivspeechError) as info:
        audio.read(tmp_path)
    assert info.value.status == ExitStatus.DATAERR
    locked = _bad(public_tmp, "locked.wav", SPEECH.read_bytes())
    locked.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(PrivspeechError) as info:
            audio.read(locked)
        assert info.value.status == ExitStatus.NOPERM
        return
    # root reads everything: the unprivileged user nobody tries instead (public_tmp lets it reach the file)
    if shutil.which("setpriv") is None:
        pytest.skip("run as root, this needs setpriv (util-linux) to read as the unprivileged user nobody")
    proc = subprocess.run(as_nobody(sys.executable, "-c", _READ_AS, locked), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    uid, status, message = proc.stdout.split(" ", 2)
    assert int(uid) == NOBODY and int(status) == ExitStatus.NOPERM, proc.stdout
    assert locked.name in message


def test_unsupported_format_is_refused(tmp_path):
    mp4_like = b"\x00\x00\x00\x18ftypmp42" + bytes(200)
    with pytest.raises(PrivspeechError, match="not a readable audio file"):
        audio.read(_bad(tmp_path, "clip.m4a", mp4_like))


def test_written_files_have_umask_mode_and_private_files_0600(tmp_path, speech):
    data, sr = speech
    audio.write(tmp_path / "public.wav", data, sample_rate=sr)
    audio.write(tmp_path / "secret.wav", data, sample_rate=sr, private=True)
    assert stat.S_IMODE((tmp_path / "secret.wav").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "public.wav").stat().st_mode) == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
