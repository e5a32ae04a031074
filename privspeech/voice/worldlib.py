"""pyworld, imported without the deprecation warning it triggers (pyworld 0.3 reads its own version through
pkg_resources), so users see only privspeech's own messages on stderr."""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import pyworld

__all__ = ["pyworld"]
