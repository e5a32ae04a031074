"""Real audio stages used to exercise the pipeline runner (importable by worker processes)."""

from __future__ import annotations

import os
import threading
import time

from privspeech import audio
from privspeech.transform import output_record, transform_file, verify_input


def gain(task, factor=0.5):
    """Scale the signal: a real audio-to-audio stage."""
    return transform_file(task, lambda data, sr: data * factor, op="gain", factor=factor)


def slow_gain(task, pause=0.5):
    """Write half the output, pause, then the rest, so a test can interrupt it mid-write."""
    verify_input(task.record)
    loaded = audio.read(task.record.audio_filepath)
    half = loaded.data.shape[0] // 2
    with audio.open_output(task.dest, sample_rate=loaded.info.sample_rate, channels=loaded.info.channels,
                           force=task.force) as (snd, result):
        snd.write(loaded.data[:half] * 0.5)
        snd.flush()
        open(os.environ.get("PRIVSPEECH_TEST_MARK", os.devnull), "a").close()
        time.sleep(pause)
        snd.write(loaded.data[half:] * 0.5)
    return output_record(task, sha256=result.sha256, info=loaded.info, op="gain", factor=0.5)


def fail_on_speaker(task, speaker="p226"):
    """Fail for one speaker's records; gain for the others."""
    if task.record.id and task.record.id.startswith(speaker):
        raise ValueError("simulated bug")
    return gain(task)


def pid_gain(task):
    """Gain, noting which process ran it."""
    record = gain(task)
    record.extra["pid"] = os.getpid()
    return record


def thread_gain(task):
    """Gain, noting which thread ran it, slowly enough that records in different threads overlap."""
    time.sleep(0.2)
    record = gain(task)
    record.extra["thread"] = threading.get_ident()
    return record


def square_after(arg):
    """(n, pause) -> n * n after `pause` seconds; a negative n kills the process running it (a worker dying
    mid-task)."""
    n, pause = arg
    time.sleep(pause)
    if n < 0:
        os.kill(os.getpid(), 9)
    return n * n
