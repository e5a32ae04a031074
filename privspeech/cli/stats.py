"""`privspeech stats`: central DP statistics over a manifest, one speaker's whole contribution as the unit."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import NotFound
from . import run as runs
from .command import command
from .options import Inputs, SkipInvalid, choice
from .noise import Delta, MaxEpsilon, Seed


@command
def stats(
    env: Env,
    paths: Inputs = None,
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="Total budget epsilon (> 0), shared equally "
                                           "by the releases.")] = ...,
    max_per_speaker: Annotated[int, typer.Option(
        "--max-per-speaker", help="Records kept per speaker (the first ones): bounds one speaker's influence.")] = ...,
    dataset: Annotated[Path, typer.Option(
        "--dataset", metavar="DIR", file_okay=False,
        help="The dataset folder whose DP ledger (.privspeech/dp-ledger.jsonl) records this release.")] = ...,
    statistic: Annotated[Optional[list[str]], choice(
        "--stat", "-s", metavar="count|duration|histogram:FIELD:E1,E2|mean:FIELD:LO:HI",
        help="A statistic to release (repeatable) [default: count and duration].", show_default=False)] = None,
    group_by: Annotated[Optional[str], typer.Option(
        "--group-by", metavar="FIELD", help="Group by a record field (e.g. gender, sample_rate).")] = None,
    groups: Annotated[Optional[str], typer.Option(
        "--groups", metavar="A,B,...", help="The declared values of --group-by; others count as (other).")] = None,
    max_duration: Annotated[float, typer.Option(
        "--max-duration", help="Seconds a record's duration is clipped to.")] = 30.0,
    max_epsilon: MaxEpsilon = None,
    delta: Delta = None,
    seed: Seed = None,
    skip_invalid: SkipInvalid = False,
):
    """Release counts, durations, histograms and means over a manifest under differential privacy.

    The unit is one speaker's whole contribution: each speaker keeps at most --max-per-speaker records and
    the noise is calibrated to what they can change. The release is written to the dataset's DP ledger
    before the figures are printed (JSON on stdout), so every speaker's budget accounts for it. With
    --max-epsilon the release is refused (exit 65) when it would take any speaker's unit-speaker total (this
    dataset's ledger plus the input's unit-speaker releases) past the budget; releases in other units
    (noise, anonymize --dp-epsilon) are not added to it.

    Example: privspeech stats data/manifest.jsonl --dataset data/ --epsilon 1 --max-per-speaker 20 --stat count
    --stat duration --group-by gender --groups F,M
    """
    import json

    from ..dp import accounting, ledger
    from ..dp.guarantee import describe
    from ..dp.mechanisms import REPORT_DELTA
    from ..dp.rng import SecureRandom
    from ..dp.statistics import parse_statistic, release
    from ..inputs import collect

    asked = [parse_statistic(s) for s in (statistic or ["count", "duration"])]
    declared = [g for g in groups.split(",") if g] if groups else []
    records = [item.record for item in collect(paths or [], env, skip_invalid=skip_invalid)]
    if not records:
        raise NotFound("no records to summarise")
    if max_epsilon is not None:
        planned = {"mechanism": "discrete-laplace", "epsilon": epsilon, "delta": 0.0,
                   "unit": accounting.SPEAKER_UNIT}
        accounting.Ledger(records, ledger.read(dataset)).check_run(
            planned, max_epsilon=max_epsilon, delta=delta or REPORT_DELTA,
            hint="lower --epsilon, or leave this speaker's records out")
    if seed is not None:
        runs.warn_seeded(env, "noise")
    out = release(records, asked, epsilon=epsilon, max_per_speaker=max_per_speaker, group_by=group_by,
                  groups=declared, max_duration=max_duration, rng=SecureRandom(seed) if seed is not None else None)
    entry = ledger.append(dataset, "stats", **out.entry)
    env.info(describe(entry))
    env.stdout.write(json.dumps({"statistics": out.values, "ledger": entry}, ensure_ascii=False) + "\n")
    env.stdout.flush()
    return 0
