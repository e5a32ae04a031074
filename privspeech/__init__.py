"""privspeech: an audio privacy toolkit for speech recordings."""

__version__ = "0.1.0"
