"""A DP ledger entry's guarantee in plain words: what it protects, how strongly, and what it does not protect."""

from __future__ import annotations

from typing import Any, Mapping

_UNITS = {
    "sample": ("two recordings that differ only in the value of one sample (all channels at one instant)",
               "It hides the exact value of any single sample. It does not hide who is speaking or what is "
               "said: voice and words are spread over thousands of samples, far beyond one unit."),
    "window": ("two recordings that differ only in one stretch of {window} consecutive samples (all channels)",
               "It hides what happens within any one stretch of {window} samples ({ms}). It does not hide who is "
               "speaking or what is said over longer stretches: voice and words span many windows."),
    "utterance": ("two utterances whose intonation contours (the released coefficients) differ arbitrarily",
                  "It covers only the released intonation coefficients of this one utterance (local DP). The "
                  "voice conversion, the utterance's duration and its voiced/unvoiced pattern are not covered. "
                  "Releases about this recording add up in the ledger; the speaker's other recordings are other "
                  "units, so it says nothing of their intonation taken together."),
    "speaker": ("two datasets that differ by one speaker's whole contribution (at most {max_per_speaker} records)",
                "It hides whether any one speaker is in the dataset, through these statistics only. It says "
                "nothing about the recordings themselves, which are not released by this step."),
}


def describe(entry: Mapping[str, Any], *, sample_rate: int | None = None) -> str:
    """The guarantee of a ledger entry (from :mod:`privspeech.dp`) as a few plain sentences."""
    unit = str(entry.get("unit", ""))
    kind = "window" if unit.startswith("window:") else unit
    window = entry.get("window", 1)
    ms = f"{1000 * window / sample_rate:.1f} ms at {sample_rate} Hz" if sample_rate else "duration depends on the rate"
    neighbours, scope = _UNITS.get(kind, (f"two inputs that differ in one unit ({unit})", ""))
    values = {"window": window, "ms": ms, "max_per_speaker": entry.get("max_per_speaker", "?")}
    if "rho" in entry:
        strength = (f"{entry['rho']:g}-zCDP, hence ({entry['epsilon']:.4g}, {entry['delta']:.3g})-DP: the probability "
                    f"of any outcome changes by at most a factor e^{entry['epsilon']:.4g}, except with probability "
                    f"{entry['delta']:.3g}")
    else:
        strength = (f"{entry['epsilon']:g}-DP (pure): the probability of any outcome changes by at most a factor "
                    f"e^{entry['epsilon']:g}")
    sensitivity = ", ".join(f"{k} {v:g}" for k, v in entry.get("sensitivity", {}).items())
    text = (f"Differential privacy ({entry['mechanism']}) for {neighbours.format(**values)}: {strength}. "
            f"Noise is calibrated to sensitivity {sensitivity} on the {entry.get('lattice', 'integer lattice')} "
            f"({entry.get('sensitivity_bound', 'bound not stated')}). {scope.format(**values)}")
    if not entry.get("private", False):
        text += " NOT PRIVATE: the noise came from a seeded generator (for tests only) and can be reproduced."
    return text.strip()
