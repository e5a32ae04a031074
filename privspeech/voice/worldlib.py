"""The C libraries behind world: pyworld, and pysptk's RAPT run so that its hidden state cannot leak between calls.

Both are imported without the deprecation warning they trigger (they read their own versions through
pkg_resources), so users see only privspeech's own messages on stderr.
"""

import os
import signal
import warnings

import numpy as np

from ..errors import InternalError

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import pysptk
    import pyworld

__all__ = ["pysptk", "pyworld", "rapt"]


def rapt(x: np.ndarray, sr: int, *, hopsize: int, min_hz: float, max_hz: float) -> np.ndarray:
    """SPTK's RAPT F0 (Hz, 0 where unvoiced; float32, one value per hop) of 16-bit-scaled float32 samples `x`.

    SPTK's RAPT (ESPS get_f0) keeps state in C statics from one call to the next: the same input gave other F0
    values and voicing depending on the length of the previous call's input (every second length in steps of
    2,000 samples, on sample_audio/p225). So each call runs in a forked child, whose statics are those of this
    process, which never runs RAPT itself; the child only computes and writes the result to a pipe.
    """
    frames = int(np.ceil(len(x) / hopsize))
    read, write = os.pipe()
    # Ctrl-C or the runner's SIGINT must not land in the fork (Python handlers would run in a half-made child,
    # whose KeyboardInterrupt would unwind through the parent's code): held until both sides are set up.
    pid = -1
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        pid = os.fork()
    finally:
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    if pid == 0:  # the child: compute, send, and leave without running any of the parent's cleanup
        status = 1
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):  # interrupted, it just dies; ignored, it ignores it too
                if signal.getsignal(signum) != signal.SIG_IGN:  # (a local Dask cluster's worker ignores Ctrl-C)
                    signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            os.close(read)
            f0 = pysptk.rapt(x, sr, hopsize=hopsize, min=min_hz, max=max_hz)
            view = memoryview(np.ascontiguousarray(f0, np.float32).tobytes())
            while view:
                view = view[os.write(write, view):]
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
    finally:  # reaped even when this process is interrupted meanwhile
        _, wait_status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(wait_status) != 0 or len(data) % 4:
        raise InternalError(f"the RAPT pitch tracker's process failed (wait status {wait_status})",
                            hint="out of memory or killed? --f0-method dio avoids it")
    f0 = np.frombuffer(data, np.float32)
    return f0 if len(f0) >= frames else np.pad(f0, (0, frames - len(f0)))
