"""Real audio stages used to exercise the pipeline runner (importable by worker processes)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from privspeech import audio
from privspeech.stages import Settings, setting
from privspeech.stages.records import output_record, transcode, verify_input


@dataclass(frozen=True)
class Gain(Settings):
    factor: float = 0.5
    pause: float = setting(identity=None, default=0.5)  # slow_gain's
    speaker: str | tuple[str, ...] = setting(identity=None, default="p226")  # whose records fail_on_speaker fails


class _Scale:
    def __init__(self, factor):
        self.factor = factor

    def process(self, block):
        return block * self.factor

    def flush(self):
        return self.empty

    def __call__(self, info):
        import numpy as np

        self.empty = np.empty((0, info.channels))
        return self


def gain(task, settings=Gain()):
    """Scale the signal: a real audio-to-audio stage."""
    _, sha256, info = transcode(task, _Scale(settings.factor), block_frames=1 << 16)
    return output_record(task, sha256=sha256, audio=info, op="gain", factor=settings.factor)


def slow_gain(task, settings=Gain()):
    """Write half the output, pause, then the rest, so a test can interrupt it mid-write."""
    verify_input(task.record)
    loaded = audio.read(task.record.audio_filepath)
    half = loaded.data.shape[0] // 2
    with audio.open_output(task.dest, sample_rate=loaded.info.sample_rate, channels=loaded.info.channels,
                           force=task.force) as (snd, result):
        snd.write(loaded.data[:half] * 0.5)
        snd.flush()
        open(os.environ.get("PRIVSPEECH_TEST_MARK", os.devnull), "a").close()
        time.sleep(settings.pause)
        snd.write(loaded.data[half:] * 0.5)
    return output_record(task, sha256=result.sha256, audio=loaded.info, op="gain", factor=0.5)


def fail_on_speaker(task, settings=Gain()):
    """Fail for one speaker's records; gain for the others."""
    if task.record.id and task.record.id.startswith(settings.speaker):
        raise ValueError("simulated bug")
    return gain(task, settings)


def pid_gain(task, settings=Gain()):
    """Gain, noting which process ran it."""
    record = gain(task, settings)
    record.extra["pid"] = os.getpid()
    return record


def thread_gain(task, settings=Gain()):
    """Gain, noting which thread ran it, slowly enough that records in different threads overlap."""
    time.sleep(0.2)
    record = gain(task, settings)
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
