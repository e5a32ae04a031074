"""`privspeech budget`: the privacy ledger composed per speaker and unit (or per record and unit)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import DataError
from .command import command
from .options import Inputs, SkipInvalid


@command
def budget(
    env: Env,
    paths: Inputs = None,
    delta: Annotated[float, typer.Option("--delta", help="delta at which zCDP costs are reported as (epsilon, delta).")]
    = 1e-6,
    dataset: Annotated[Optional[Path], typer.Option(
        "--dataset", metavar="DIR", file_okay=False,
        help="Also charge every speaker the releases in DIR's DP ledger (privspeech stats, unit speaker).")] = None,
    per_record: Annotated[bool, typer.Option(
        "--per-record", help="One line per record and unit (its own ops only) instead of per speaker and unit.")]
    = False,
    max_epsilon: Annotated[Optional[float], typer.Option(
        "--max-epsilon", metavar="EPS", help="Exit 65 (after printing) when any line's epsilon is over EPS; "
                                             "each unit is held to EPS on its own.")] = None,
    skip_invalid: SkipInvalid = False,
):
    """Compose the DP ledger of a manifest: one JSON line per speaker and unit on stdout.

    A figure holds for one unit (what two neighbouring inputs differ in: sample, window:W, utterance, speaker)
    and figures of different units are never added. Releases on one source recording add up (pure epsilons
    add, zCDP rhos add and are converted at --delta by Canonne-Kamath-Steinke, deltas add), each release
    counted once however many derived records carry it. Across a speaker's recordings, the record-level units
    (sample, window:W, utterance) count by the largest recording total: they protect one unit of one
    recording, not the speaker's recordings together. Unit speaker (stats) adds up over everything about the
    speaker. A source recording is known by its keyed source HMAC or source id, a speaker by the keyed source
    speaker (scan -k, anonymize -k), else the record's speaker; speakers sharing a recording are one.
    Fields: speaker, unit, epsilon, delta, pure_epsilon, rho, composition (the rule applied), records,
    recordings, releases, not_private_ops (seeded, test-only releases).

    Example: privspeech budget dp/manifest.jsonl --dataset dp/ --max-epsilon 10
    """
    import json

    from ..dp import accounting, ledger
    from ..inputs import collect

    records = [item.record for item in collect(paths or [], env, skip_invalid=skip_invalid)]
    book = accounting.Ledger(records, ledger.read(dataset) if dataset is not None else [])
    lines, over = book.table(delta=delta, per_record=per_record, max_epsilon=max_epsilon)
    env.stdout.writelines(json.dumps(line) + "\n" for line in lines)
    env.stdout.flush()
    if over:
        raise DataError(f"over --max-epsilon {max_epsilon:g}: {', '.join(over)}",
                        hint="each unit's figure is held to the budget on its own")
    return 0
