"""A reader that stops early (`| head`): privspeech stops quietly, and says with its exit status whether all its
output was delivered (0) or not (141, as a process killed by SIGPIPE would report)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import SAMPLES, run_cli


def _into_head(args, head_args) -> tuple[int, bytes, bytes]:
    """Run privspeech with stdout piped into `head`; returns (privspeech's status, its stderr, head's output)."""
    proc = subprocess.Popen([sys.executable, "-m", "privspeech", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", *head_args], stdin=proc.stdout, stdout=subprocess.PIPE)
    proc.stdout.close()
    shown, _ = head.communicate(timeout=120)
    err = proc.stderr.read()
    return proc.wait(timeout=120), err, shown


@pytest.fixture(scope="module")
def long_recordings(tmp_path_factory):
    """Eight recordings of about 2 minutes of real speech: each record takes long enough that `head` has gone before
    the next one is written."""
    import numpy as np
    import soundfile as sf

    folder = tmp_path_factory.mktemp("long")
    y, sr = sf.read(SAMPLES / "p225" / "p225_003.wav")
    for i in range(8):
        sf.write(folder / f"{i}.wav", np.tile(np.roll(y, 1000 * i), 20), sr, subtype="PCM_16")
    return folder


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_a_batch_cut_short_by_head_exits_141_quietly(tmp_path, jobs, long_recordings):
    status, err, shown = _into_head(["noise", "--epsilon", "100", "--seed", "t", "-j", jobs, "-q", "--out-dir",
                                     tmp_path / "dp", long_recordings], ["-n", "1"])
    assert shown.count(b"\n") == 1
    assert status == 141, err.decode()
    assert b"Traceback" not in err and b"error" not in err


def test_audio_on_stdout_cut_short_exits_141_without_a_misleading_hint(tmp_path):
    made = run_cli(["keygen", "-o", tmp_path / "k"])
    sealed = tmp_path / "x.age"
    assert run_cli(["encrypt", "-r", made.stdout.decode().strip(), "-o", sealed,
                    SAMPLES / "p225" / "p225_003.wav"]).returncode == 0
    status, err, shown = _into_head(["decrypt", "-i", tmp_path / "k", "-o", "-", sealed], ["-c", "100"])
    assert len(shown) == 100 and status == 141, err.decode()
    assert b"cannot write" not in err and b"hint" not in err and b"Traceback" not in err


def test_a_reader_that_takes_everything_sees_exit_0(tmp_path):
    status, err, shown = _into_head(["scan", "-q", SAMPLES], ["-n", "100"])
    assert status == 0 and shown.count(b"\n") == 5, err.decode()


def test_prune_finishes_its_run_when_the_report_is_cut_short(tmp_path):
    """prune's stdout is a report: a closed pipe does not stop the deletions (the audit log has every line), and
    the exit status says the report was not all delivered."""
    import os
    import shutil
    import time

    from privspeech.managed import mark

    root = tmp_path / "ds"
    mark(root)
    old = time.time() - 90 * 86400
    for i in range(300):
        path = root / f"{i:03d}.wav"
        shutil.copyfile(SAMPLES / "p225" / "p225_003.wav", path)
        os.utime(path, (old, old))
    status, err, shown = _into_head(["prune", root, "--older-than", "30d", "-q"], ["-n", "1"])
    assert shown.count(b"\n") == 1 and status == 141, err.decode()
    assert not list(root.glob("*.wav")) and b"Traceback" not in err
    audit = (root / ".privspeech" / "audit.jsonl").read_text()
    assert audit.count('"action": "deleted"') == 300


@pytest.mark.slow
def test_workers_stopped_while_tracking_pitch_stay_quiet(tmp_path):
    """The runner stops its workers with SIGINT when stdout closes; a worker may be forking RAPT's process at that
    moment, and the signal must not surface there (it did, as 'Exception ignored ... KeyboardInterrupt', about one
    run in six)."""
    from conftest import VCTK

    for attempt in range(6):
        status, err, shown = _into_head(["anonymize", VCTK, "-j", "2", "--out-dir", tmp_path / f"out{attempt}"],
                                        ["-1"])
        assert status in (0, 141) and shown.count(b"\n") == 1
        assert b"Traceback" not in err and b"Exception ignored" not in err, err.decode()
