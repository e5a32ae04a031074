"""DET curves of the attacks and a bar chart of the utility figures, as one PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import os

import numpy as np

from ..fsutil import write_bytes
from .deps import need
from .evaluation import Report

TICKS = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95]
LIMITS = (0.0005, 0.98)  # rates beyond are drawn on the frame, so a perfect attack still shows


def _probit(p) -> np.ndarray:
    from scipy.stats import norm

    return norm.ppf(np.clip(p, *LIMITS))


def render(report: Report) -> bytes:
    """The figure as PNG bytes."""
    matplotlib = need("matplotlib")
    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.8), dpi=110, layout="constrained")
    det, bars = figure.subplots(1, 2, width_ratios=[1.15, 1])
    ends = _probit(np.array(LIMITS))
    det.plot(ends, ends, color="0.8", linestyle=":", linewidth=1)
    for attack in report.attacks:
        line, = det.plot(_probit(attack.far), _probit(attack.frr), clip_on=False,
                         label=f"{attack.name} (EER {100 * attack.score.eer:.1f}%)")
        det.plot(*_probit([attack.score.eer] * 2), "o", color=line.get_color(), clip_on=False)
    ticks = _probit(np.array(TICKS))
    labels = [f"{100 * t:g}" for t in TICKS]
    det.set_xticks(ticks, labels)
    det.set_yticks(ticks, labels)
    det.set_xlim(*ends)
    det.set_ylim(*ends)
    det.set_xlabel("false acceptance rate (%)")
    det.set_ylabel("false rejection rate (%)")
    det.set_title("DET curves of the attacks (dots: EER)")
    det.grid(True, color="0.9")
    det.legend(loc="upper right", fontsize="small")

    names, values = [], []
    pitch = report.utility.get("pitch", {}).get("correlation")
    if pitch is not None:
        names.append("pitch correlation")
        values.append(pitch)
    asr = report.utility.get("asr")
    if asr is not None:
        for name, key in (("word agreement\n(1 - disagreement)", "word_disagreement"),
                          ("1 - WER\noriginal", "wer_original"), ("1 - WER\nanonymized", "wer_anonymized")):
            if asr[key] is not None:
                names.append(name)
                values.append(max(0.0, 1 - asr[key]))
    positions = np.arange(len(names))
    bars.bar(positions, values, color="tab:green")
    for x, v in zip(positions, values):
        bars.annotate(f"{v:.2f}", (x, v), ha="center", va="bottom", fontsize="small")
    bars.set_xticks(positions, names, fontsize="small")
    bars.set_ylim(0, 1.08)
    bars.set_title("utility (higher is better)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_png(report: Report, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write the figure atomically (never clobbering an existing file without `force`)."""
    write_bytes(path, render(report), force=force)
