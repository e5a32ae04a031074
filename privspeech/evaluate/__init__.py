"""Privacy and utility evaluation: speaker-verification attacks on anonymized speech and utility metrics.

The heavy dependencies (torch, resemblyzer, faster-whisper, jiwer, matplotlib) belong to the optional
``eval`` extra and are imported only inside the functions that need them, so importing this package
costs nothing and a missing extra is reported as a PrivspeechError with the install hint.
"""
