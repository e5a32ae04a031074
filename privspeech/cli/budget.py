"""`privspeech budget`: the privacy ledger composed per speaker (or per record)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common
from .noise import MaxEpsilon


@common.handles_errors
def budget(
    paths: common.Inputs = None,
    delta: Annotated[float, typer.Option("--delta", help="delta at which zCDP costs are reported as (epsilon, delta).")]
    = 1e-6,
    dataset: Annotated[Optional[Path], typer.Option(
        "--dataset", metavar="DIR", file_okay=False,
        help="Also charge every speaker the releases in DIR's DP ledger (privspeech stats).")] = None,
    per_record: Annotated[bool, typer.Option("--per-record", help="One line per record instead of per speaker.")]
    = False,
    max_epsilon: MaxEpsilon = None,
    skip_invalid: common.SkipInvalid = False,
    quiet: common.Quiet = False,
):
    """Compose the DP ledger of a manifest: one JSON line per speaker (or record) on stdout.

    Pure epsilons add, zCDP rhos add and are converted at --delta (Canonne-Kamath-Steinke), approximate-DP
    deltas add. With --max-epsilon, exits 65 (after printing) when any speaker is over budget.

    Example: privspeech budget dp/manifest.jsonl --dataset dp/ --max-epsilon 10
    """
    import json

    from ..console import Env
    from ..dp import accounting, ledger
    from ..inputs import collect

    env = Env(quiet=quiet)
    records = [item.record for item in collect(paths or [], env, skip_invalid=skip_invalid)]
    shared = ledger.read(dataset) if dataset is not None else []
    if per_record:
        rows = {r.id or r.audio_filepath: (accounting.record_cost(r), 1, r.privspeech.ops) for r in records}
    else:
        totals = accounting.per_speaker(records, shared)
        rows = {who: (cost, 0, []) for who, cost in totals.items()}
        for r in records:
            who = accounting.speaker_of(r)
            cost, count, ops = rows[who]
            rows[who] = (cost, count + 1, ops + r.privspeech.ops)
    over = []
    for name, (cost, count, ops) in rows.items():
        eps, total_delta = cost.approx(delta)
        seeded = sum(1 for op in [*ops, *shared] if "mechanism" in op and op.get("private") is False)
        line = {"record" if per_record else "speaker": name, "records": count, "epsilon": eps, "delta": total_delta,
                "pure_epsilon": cost.epsilon, "rho": cost.rho, "not_private_ops": seeded}
        env.stdout.write(json.dumps(line) + "\n")
        if max_epsilon is not None and eps > max_epsilon:
            over.append(f"{name} ({eps:.4g})")
    env.stdout.flush()
    if over:
        raise common.PrivspeechError(f"over --max-epsilon {max_epsilon:g}: {', '.join(over)}",
                                     status=common.ExitStatus.DATAERR)
    return 0
