"""`privspeech noise`: event-level differential privacy on audio samples."""

from typing import Annotated, Optional

import typer

from ..console import Env
from . import run as runs
from .command import command
from .options import Inputs, RunOptions, choice, record_stage

Epsilon = Annotated[Optional[float], typer.Option("--epsilon", "-e", help="Privacy budget epsilon (> 0).")]
Delta = Annotated[Optional[float], typer.Option(
    "--delta", help="delta in (0, 1): for the Gaussian mechanism with --epsilon; also the delta budgets are "
                    "reported at.")]
MaxEpsilon = Annotated[Optional[float], typer.Option(
    "--max-epsilon", metavar="EPS",
    help="Refuse (exit 65, before any output) a run that would take any speaker's total in this release's unit "
         "past EPS, as privspeech budget composes it from the input's ledger: per unit, never summed across "
         "units; releases on one recording add up, a speaker's recordings count by the largest.")]
Seed = Annotated[Optional[str], typer.Option(
    "--seed", help="TESTS ONLY: reproducible noise, marked NOT PRIVATE in the ledger.", hidden=False)]

SPEECH_RMS = 3277  # speech at -20 dBFS on the int16 grid, what the SNR note and warning are stated for


@command
@record_stage()
def noise(
    env: Env,
    run: RunOptions,
    paths: Inputs = None,
    epsilon: Epsilon = None,
    delta: Delta = None,
    rho: Annotated[Optional[float], typer.Option(
        "--rho", help="zCDP budget rho (> 0) for the Gaussian mechanism.")] = None,
    mechanism: Annotated[str, choice(
        "--mechanism", metavar="laplace|gaussian",
        help="Discrete Laplace (pure epsilon-DP) or discrete Gaussian (rho-zCDP).")] = "laplace",
    unit: Annotated[str, choice(
        "--unit", "-u", metavar="sample|window:W",
        help="What two neighbouring recordings differ in: one sample, or W consecutive samples.")] = "sample",
    grid_bits: Annotated[int, typer.Option(
        "--grid-bits", help="Float audio is noised on the 2^-K grid of [-1, 1].", metavar="K")] = 15,
    max_epsilon: MaxEpsilon = None,
    seed: Seed = None,
):
    """Add calibrated integer-lattice noise to every sample: event-level differential privacy.

    Noise comes from exact discrete Laplace or Gaussian samplers driven by a ChaCha20 generator keyed from
    the operating system. Each output record's ops gain an entry naming the mechanism, unit, epsilon, delta or
    rho, sensitivity and lattice; privspeech budget adds up the releases on one source recording per unit and
    reports a speaker's largest recording total. Noise on samples protects short stretches of audio; it does
    not hide who is speaking.

    Example: privspeech noise calls/ --epsilon 8 --unit window:160 --out-dir dp/ > dp/manifest.jsonl
    """
    import math

    import numpy as np

    from ..dp import accounting
    from ..dp.audio_noise import noise_mechanism
    from ..dp.guarantee import describe
    from ..dp.mechanisms import REPORT_DELTA
    from ..inputs import collect
    from ..stages import WAV, Stage
    from ..stages.noise import NoiseSettings, noise_record

    cluster = runs.cluster(run)
    settings = NoiseSettings(mechanism=mechanism, unit=unit, epsilon=epsilon, delta=delta, rho=rho,
                             grid_bits=grid_bits, seed=seed)
    mech, entry = noise_mechanism(np.int16, 1, epsilon=epsilon, delta=delta, rho=rho, mechanism=mechanism, unit=unit,
                                  grid_bits=grid_bits)  # validates the options before any input is read
    items = collect(paths or [], env, skip_invalid=run.skip_invalid)
    if max_epsilon is not None:
        items = list(items)
        accounting.Ledger(item.record for item in items).check_run(
            entry, max_epsilon=max_epsilon, delta=delta or REPORT_DELTA,
            hint="lower --epsilon (or --rho), or leave this speaker's records out")
    if seed is not None:
        runs.warn_seeded(env, "noise")
        entry["private"] = False
    env.info(describe(entry))
    noise_sd = math.sqrt(mech.sampler.variance)
    snr_db = 20 * math.log10(SPEECH_RMS / noise_sd)
    env.info(f"For 16-bit mono audio: noise sd {noise_sd:.0f} steps; speech at -20 dBFS (RMS {SPEECH_RMS}) gets an SNR "
             f"of {snr_db:.1f} dB. Sensitivity grows with channels and sample width; each record's ops entry states "
             f"its own.")
    if snr_db < 0:
        env.warn(f"the noise will be {-snr_db:.1f} dB louder than speech at -20 dBFS: the outputs will be mostly "
                 f"noise (a larger --epsilon or --rho, or --unit sample, lowers it)")
    return runs.run(Stage("noise", noise_record, settings, naming=WAV), env, run, items, cluster=cluster)
