"""The report for people (a rich table on stderr) and for machines (JSON, written atomically)."""

from __future__ import annotations

import json
import os

from ..fsutil import write_bytes
from .evaluation import Report


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def headline(report: Report) -> str:
    """What was evaluated, in words: the anonymization (method, level and any DP epsilon, or the function's name)
    and how many speakers and utterances."""
    described = report.settings.get("anonymizer")
    if described is None:
        words = ["anonymization not known"]
    else:
        words = [described.get("method") or described["function"].rsplit(".", 1)[-1]]
        if described.get("level"):
            words.append(f"{described['level']} level")
        if described.get("epsilon") is not None:
            words.append(f"DP intonation epsilon {described['epsilon']:g}")
    return f"{', '.join(words)}; {report.counts['speakers']} speakers, {report.counts['utterances']} utterances"


def table(report: Report):
    """The attacks (EER with its interval, trials, per gender) and utility figures as one rich Table."""
    from rich.table import Table

    confidence = report.settings.get("confidence", 0.95)
    genders = sorted({g for attack in report.attacks for g in attack.by_gender})
    out = Table(title=f"privspeech evaluate: {headline(report)}", title_justify="left")
    out.add_column("figure")
    out.add_column("value", justify="right")
    out.add_column(f"{confidence:.0%} CI (speakers)", justify="right")
    out.add_column("trials tgt/non", justify="right")
    for gender in genders:
        out.add_column(f"EER {gender}", justify="right")
    for attack in report.attacks:
        s = attack.score
        cells = [_pct(attack.by_gender[g].eer) if g in attack.by_gender else "—" for g in genders]
        interval = f"{_pct(s.ci_low)}–{_pct(s.ci_high)}" if s.ci_low is not None else f"none ({s.n_speakers} speakers)"
        out.add_row(f"EER {attack.name}", _pct(s.eer), interval,
                    f"{s.n_target}/{s.n_nontarget}", *cells)
    blank = [""] * (len(genders) + 2)
    for name in report.not_run:
        out.add_row(f"EER {name}", "not run", *blank)
    utility = report.utility
    pitch = utility.get("pitch")
    if pitch is not None:
        out.add_row(f"pitch correlation (log F0, harvest, {pitch['used']} utt)", _number(pitch["correlation"]), *blank)
        out.add_row("  without gross F0 errors", _number(pitch["correlation_without_gross"]), *blank)
        out.add_row("  gross F0 errors (frames off the fit by > 20%)", _pct(pitch["gross_error_rate"]), *blank)
    duration = utility["duration"]
    out.add_row("duration max |diff|", f"{duration['max_abs_diff_s'] * 1000:.1f} ms", *blank)
    if "asr" in utility:
        asr = utility["asr"]
        per_utterance = asr["per_utterance"]
        out.add_row("word disagreement (orig vs anon)", _pct(asr["word_disagreement"]), *blank)
        out.add_row("  per utterance (capped at 100%): mean", _pct(per_utterance["mean"]), *blank)
        out.add_row("  per utterance: median", _pct(per_utterance["median"]), *blank)
        out.add_row("  utterances over 50%", _pct(per_utterance["over_half"]), *blank)
        if asr["reference_utterances"]:
            out.add_row("WER original vs text", _pct(asr["wer_original"]), *blank)
            out.add_row("WER anonymized vs text", _pct(asr["wer_anonymized"]), *blank)
    return out


def write_json(report: Report, path: str | os.PathLike, *, force: bool = False) -> None:
    """Write the JSON report atomically (never clobbering an existing file without `force`)."""
    write_bytes(path, (json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n").encode("utf-8"), force=force)

