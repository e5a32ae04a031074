"""Central DP statistics over manifest records, with speaker-level contribution bounding.

The unit is one speaker's whole contribution: neighbouring datasets differ by adding or removing one
speaker. Each speaker keeps at most ``max_per_speaker`` records (the first ones in input order), and
each record falls in exactly one cell (group, bin) of each statistic, so one speaker moves a whole
statistic by at most ``max_per_speaker`` times one record's clipped contribution, in L1. Every
statistic is released with the lattice Laplace at an equal share of ``epsilon`` (pure DP,
sequential composition). Group values must be declared: groups read off the data would reveal
themselves. Clamping noisy counts to >= 0 and dividing sums by counts are post-processing.

Statistics (``parse_statistic`` reads them from text):

- ``count``: records per group.
- ``duration``: total seconds per group; each record's duration clipped to ``max_duration`` and
  rounded to 10 ms.
- ``histogram:FIELD:E1,E2,...``: records per bin of a numeric field, with an underflow and an
  overflow bin, so every record lands in one bin.
- ``mean:FIELD:LO:HI``: mean of a numeric field clipped to [LO, HI] (on a grid of (HI-LO)/1024),
  from a noisy sum and a noisy count (two releases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import DataError, UsageError
from ..manifest import Record
from .calibration import check_positive
from .mechanisms import calibrate
from .rng import SecureRandom, resolve

DURATION_STEP = 0.01  # seconds per lattice step of durations
MEAN_STEPS = 1024  # lattice steps across a mean's clipping range
OTHER = "(other)"


@dataclass(frozen=True)
class Statistic:
    """One statistic to release: ``kind`` in count, duration, histogram, mean."""

    kind: str
    field: str | None = None
    edges: tuple[float, ...] = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def name(self) -> str:
        return self.kind if self.field is None else f"{self.kind}:{self.field}"


@dataclass
class StatsRelease:
    """Released values ``{statistic name: {group: value}}`` and the ledger entry (unit: one speaker)."""

    values: dict[str, dict[str, Any]]
    entry: dict[str, Any]


def parse_statistic(text: str) -> Statistic:
    """``count``, ``duration``, ``histogram:FIELD:E1,E2,...`` or ``mean:FIELD:LO:HI``."""
    parts = text.split(":")
    try:
        if parts == ["count"] or parts == ["duration"]:
            return Statistic(parts[0])
        if parts[0] == "histogram" and len(parts) == 3 and parts[1]:
            edges = tuple(float(e) for e in parts[2].split(","))
            if all(math.isfinite(e) for e in edges) and list(edges) == sorted(set(edges)):
                return Statistic("histogram", parts[1], edges=edges)
        if parts[0] == "mean" and len(parts) == 4 and parts[1]:
            low, high = float(parts[2]), float(parts[3])
            if math.isfinite(low) and math.isfinite(high) and low < high:
                return Statistic("mean", parts[1], low=low, high=high)
    except ValueError:
        pass
    raise UsageError(f"not a statistic: {text!r}", hint="use count, duration, histogram:FIELD:E1,E2,... (increasing edges) or mean:FIELD:LO:HI")


def bound_contributions(records: Iterable[Record], max_per_speaker: int) -> list[Record]:
    """The first `max_per_speaker` records of each speaker; a record without a speaker is refused."""
    if isinstance(max_per_speaker, bool) or not isinstance(max_per_speaker, int) or max_per_speaker < 1:
        raise UsageError(f"max records per speaker must be an integer >= 1, not {max_per_speaker!r}")
    kept, seen = [], {}
    for record in records:
        if not record.speaker:
            raise DataError(f"{record.audio_filepath}: record without a speaker",
                            hint="speaker-level DP needs every record's speaker (scan --speaker-from)")
        if seen.get(record.speaker, 0) < max_per_speaker:
            seen[record.speaker] = seen.get(record.speaker, 0) + 1
            kept.append(record)
    return kept


def release(records: Iterable[Record], statistics: list[Statistic], *, epsilon: float, max_per_speaker: int,
            group_by: str | None = None, groups: Iterable[str] = (), max_duration: float = 30.0,
            rng: SecureRandom | None = None) -> StatsRelease:
    """Release `statistics` over `records` under epsilon-DP for one speaker's whole contribution.

    Parameters
    ----------
    records : iterable of Record
    statistics : list of Statistic
    epsilon : float
        Total budget, shared equally by the releases (a mean is two).
    max_per_speaker : int
        Records kept per speaker.
    group_by : str, optional
        A record field (e.g. ``sample_rate`` or an extra key such as ``gender``); values outside
        `groups` are counted in ``(other)``.
    groups : iterable of str
        The declared group values (required with `group_by`).
    max_duration : float
        Clipping bound of a record's duration, in seconds.
    rng : SecureRandom, optional
    """
    check_positive(epsilon, "epsilon")
    check_positive(max_duration, "max duration")
    if not statistics:
        raise UsageError("no statistic asked for", hint="e.g. count, duration")
    names = [s.name for s in statistics]
    if len(set(names)) != len(names):
        raise UsageError("a statistic is asked for twice")
    labels = list(dict.fromkeys(str(g) for g in groups))
    if group_by is not None and not labels:
        raise UsageError(f"grouping by {group_by} needs the list of its values",
                         hint="declare them, e.g. --groups f,m: values read off the data would leak")
    labels = labels + [OTHER] if group_by is not None else ["all"]
    kept = bound_contributions(records, max_per_speaker)
    cell = np.array([_group(r, group_by, labels) for r in kept], dtype=np.int64)
    rng = resolve(rng)
    share = epsilon / sum(2 if s.kind == "mean" else 1 for s in statistics)
    values: dict[str, dict[str, Any]] = {}
    sensitivity: dict[str, float] = {}
    mechanisms = []

    def noisy(name: str, per_record: np.ndarray, where: np.ndarray, cells: int, bound: int) -> np.ndarray:
        totals = np.bincount(where, weights=per_record, minlength=cells).astype(np.int64) if where.size \
            else np.zeros(cells, dtype=np.int64)
        mech = calibrate(mechanism="laplace", l1=max_per_speaker * bound, l2_squared=1, epsilon=share, rng=rng)
        sensitivity[f"l1:{name}"] = float(max_per_speaker * bound)
        mechanisms.append(mech)
        return totals + mech.sampler.sample(cells)

    groups_n = len(labels)
    for stat in statistics:
        if stat.kind == "count":
            counts = noisy("count", np.ones(len(kept)), cell, groups_n, 1)
            values["count"] = dict(zip(labels, np.maximum(counts, 0).tolist()))
        elif stat.kind == "duration":
            limit = round(max_duration / DURATION_STEP)
            steps = np.array([min(round((r.duration or 0.0) / DURATION_STEP), limit) for r in kept], dtype=np.float64)
            total = noisy("duration", steps, cell, groups_n, limit)
            values["duration"] = dict(zip(labels, (np.maximum(total, 0) * DURATION_STEP).round(2).tolist()))
        elif stat.kind == "histogram":
            x, has = _numbers(kept, stat.field)
            bins = np.searchsorted(np.array(stat.edges), x[has], side="right")  # 0 underflow .. len(edges) overflow
            nb = len(stat.edges) + 1
            counts = noisy(stat.name, np.ones(int(has.sum())), cell[has] * nb + bins, groups_n * nb, 1)
            bin_labels = [f"<{stat.edges[0]:g}"] + [f"[{a:g},{b:g})" for a, b in zip(stat.edges, stat.edges[1:])] \
                + [f">={stat.edges[-1]:g}"]
            counts = np.maximum(counts, 0).reshape(groups_n, nb)
            values[stat.name] = {g: dict(zip(bin_labels, row.tolist())) for g, row in zip(labels, counts)}
        else:  # mean
            x, has = _numbers(kept, stat.field)
            step = (stat.high - stat.low) / MEAN_STEPS
            shifted = np.rint((np.clip(x[has], stat.low, stat.high) - stat.low) / step)
            sums = noisy(f"sum:{stat.field}", shifted, cell[has], groups_n, MEAN_STEPS)
            counts = noisy(f"count:{stat.field}", np.ones(int(has.sum())), cell[has], groups_n, 1)
            values[stat.name] = {g: (None if c <= 0 else float(np.clip(stat.low + s * step / c, stat.low, stat.high)))
                                 for g, s, c in zip(labels, sums.tolist(), counts.tolist())}
    first = mechanisms[0].fields
    entry = {"mechanism": first["mechanism"], "epsilon": float(epsilon), "delta": 0.0, "unit": "speaker",
             "max_per_speaker": max_per_speaker, "statistics": names, "group_by": group_by,
             "groups": labels, "sensitivity": sensitivity, "lattice": "integer counts; 10 ms durations; "
             f"(HI-LO)/{MEAN_STEPS} for means",
             "sensitivity_bound": (f"at most {max_per_speaker} records per speaker, each in one cell; durations "
                                   f"clipped to {max_duration:g} s, mean fields clipped to their range; "
                                   f"{len(mechanisms)} releases at epsilon {share:.4g} each"),
             "sampler": first["sampler"], "private": first["private"]}
    return StatsRelease(values, entry)


def _group(record: Record, group_by: str | None, labels: list[str]) -> int:
    if group_by is None:
        return 0
    value = _field(record, group_by)
    return labels.index(str(value)) if value is not None and str(value) in labels[:-1] else len(labels) - 1


def _field(record: Record, name: str) -> Any:
    if name in ("duration", "speaker", "sample_rate", "num_channels", "text", "id"):
        return getattr(record, name)
    return record.extra.get(name)


def _numbers(records: list[Record], name: str) -> tuple[np.ndarray, np.ndarray]:
    """The field's values as floats and a mask of the records that have a finite number there."""
    raw = [_field(r, name) for r in records]
    has = np.array([isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw],
                   dtype=bool)
    x = np.array([float(v) if ok else 0.0 for v, ok in zip(raw, has)], dtype=np.float64)
    return x, has
