"""DET curves of the attacks and a bar chart of the utility figures, as one PNG (matplotlib, Agg backend).

The DET axes are normal deviates of the error rates. A rate of 0 or 1 has no place on them, so it is drawn on the
line marked 0 or 100, set apart from the smallest rate the trial counts can give and just inside the frame.
"""

from __future__ import annotations

import io
import os

import numpy as np

from ..fsutil import write_bytes
from .deps import need
from .evaluation import Report
from .report import headline

TICKS = [0.0001, 0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99, 0.999, 0.9999]
MARGIN = 0.3  # normal deviates between the 0 (or 100) line and the frame
GAP = 0.6  # the least between that line and the nearest tick, so that their labels stay apart


def _floor(report: Report) -> float:
    """The rate drawn on the 0 line: half the smallest non-zero rate any attack can have."""
    return 0.5 / max(max(a.score.n_target, a.score.n_nontarget) for a in report.attacks)


def _pct(value: float) -> str:
    return f"{100 * value:.3g}%"


def _det(axes, report: Report) -> None:
    from scipy.stats import norm

    floor = _floor(report)
    edge = -norm.ppf(floor)

    def deviate(rate):
        return norm.ppf(np.clip(rate, floor, 1 - floor))

    axes.plot([-edge, edge], [-edge, edge], color="0.8", linestyle=":", linewidth=1)
    confidence = report.settings.get("confidence", 0.95)
    for attack in report.attacks:
        s = attack.score
        # the curve runs from accepting every trial to rejecting every trial
        far, frr = np.concatenate(([1.0], attack.far, [0.0])), np.concatenate(([0.0], attack.frr, [1.0]))
        reference = attack.name == "original"  # on top: the other curves end along its 0 lines
        interval = (f"{confidence:.0%} CI {_pct(s.ci_low)}–{_pct(s.ci_high)}" if s.ci_low is not None
                    else f"no CI with {s.n_speakers} speakers")
        line, = axes.plot(deviate(far), deviate(frr), linewidth=1.5, zorder=3 if reference else 2,
                          label=f"{attack.name}: EER {_pct(s.eer)} ({interval}), {s.n_target} target / "
                                f"{s.n_nontarget} non-target trials")
        axes.plot(*[deviate(s.eer)] * 2, "o", color=line.get_color(), zorder=4)
    for name, reason in report.not_run.items():
        axes.plot([], [], " ", label=f"{name}: not run ({reason})")
    ticks = [t for t in TICKS if -norm.ppf(min(t, 1 - t)) < edge - GAP]
    positions = [-edge, *norm.ppf(ticks), edge]
    labels = ["0", *(f"{100 * t:g}" for t in ticks), "100"]
    for set_ticks, set_limits in ((axes.set_xticks, axes.set_xlim), (axes.set_yticks, axes.set_ylim)):
        set_ticks(positions, labels)
        set_limits(-edge - MARGIN, edge + MARGIN)
    axes.set_xlabel("false acceptance rate (%)")
    axes.set_ylabel("false rejection rate (%)")
    axes.set_title(f"{headline(report)}\nDET curves of the attacks (dots: EER; CI: bootstrap over speakers)",
                   fontsize="medium")
    axes.grid(True, color="0.9")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize="small")


def _utility(axes, report: Report) -> None:
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
    axes.bar(positions, values, color="tab:green")
    for x, v in zip(positions, values):
        axes.annotate(f"{v:.2f}", (x, v), ha="center", va="bottom", fontsize="small")
    axes.set_xticks(positions, names, fontsize="small")
    axes.set_ylim(0, 1.08)
    axes.set_title("utility (higher is better)", fontsize="medium")


def figure(report: Report):
    """The figure: DET curves (left) and utility bars (right), a matplotlib Figure."""
    matplotlib = need("matplotlib")
    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    out = Figure(figsize=(12, 6.4), dpi=110, layout="constrained")
    det, bars = out.subplots(1, 2, width_ratios=[1.3, 1])
    _det(det, report)
    _utility(bars, report)
    return out


def render(report: Report) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure(report).savefig(buffer, format="png")
    return buffer.getvalue()


def write_png(report: Report, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write the figure atomically (never clobbering an existing file without `force`)."""
    write_bytes(path, render(report), force=force)
