"""Differential privacy: a secure generator, exact lattice samplers, calibrated mechanisms and the ledger.

Modules: :mod:`.rng` (ChaCha20 generator), :mod:`.samplers` (discrete Laplace and Gaussian),
:mod:`.calibration` (scales, zCDP conversion), :mod:`.mechanisms` (a calibrated sampler and its
ledger fields), :mod:`.audio_noise` (event-level DP on samples), :mod:`.intonation` (DP F0 contour for
the anonymizer), :mod:`.statistics` (central DP statistics over records), :mod:`.accounting`
(composition and budgets), :mod:`.ledger` (the dataset's ledger file), :mod:`.guarantee` (plain words).
Import what you use from its module: the package imports nothing, so `privspeech budget` and `stats`, which only
add up ledgers, do not load the generator's cipher or numpy.
"""
