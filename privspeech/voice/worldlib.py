"""pyworld and pysptk, imported without the deprecation warning both trigger (they read their own versions through
pkg_resources), so users see only privspeech's own messages on stderr."""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import pysptk
    import pyworld

__all__ = ["pysptk", "pyworld"]
