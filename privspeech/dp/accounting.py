"""Privacy accounting over the ledger: the DP entries in records' ``ops``, composed per record and per speaker.

Composition is sequential and conservative: pure epsilons add, rhos add under zCDP, and deltas of
approximate-DP entries add. A total is reported as ``(epsilon, delta)`` at a chosen delta:
``epsilon_pure + zcdp_epsilon(rho, delta)`` at ``delta_approx + delta``. Per speaker, the costs of
all the speaker's records add (whatever unit each entry names) and so do the dataset-level entries
(``privspeech stats``), whose unit is every speaker's whole contribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import ExitStatus, PrivspeechError
from ..manifest import Record
from .calibration import check_delta, zcdp_epsilon


@dataclass(frozen=True)
class Cost:
    """A composed privacy cost: pure ``epsilon``, zCDP ``rho`` and approximate-DP ``delta`` parts."""

    epsilon: float = 0.0
    rho: float = 0.0
    delta: float = 0.0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.epsilon + other.epsilon, self.rho + other.rho, self.delta + other.delta)

    def approx(self, delta: float) -> tuple[float, float]:
        """``(epsilon, delta_total)``: the cost as approximate DP when the zCDP part is converted at `delta`."""
        check_delta(delta)
        if self.rho == 0:
            return self.epsilon, self.delta
        return self.epsilon + zcdp_epsilon(self.rho, delta), self.delta + delta

    def describe(self, delta: float) -> str:
        eps, total_delta = self.approx(delta)
        parts = [f"epsilon={eps:.4g}", f"delta={total_delta:.3g}"]
        if self.rho:
            parts.append(f"(pure epsilon {self.epsilon:.4g} + rho {self.rho:.4g} zCDP)")
        return " ".join(parts)


ZERO = Cost()


def cost_of(entry: Mapping[str, Any], where: str = "ledger entry") -> Cost | None:
    """The cost a ledger entry records, or None when it is not a DP operation (no ``mechanism``).

    An entry with ``rho`` is charged by its rho (its epsilon and delta are then only a report);
    otherwise by ``epsilon`` and ``delta``. A DP entry without them is refused, never charged as free.
    """
    if "mechanism" not in entry:
        return None
    figures = {}
    for name in ("epsilon", "delta", "rho"):
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise PrivspeechError(f"{where}: {name} must be a finite number >= 0, not {value!r}",
                                  status=ExitStatus.DATAERR)
        figures[name] = float(value)
    if "rho" in figures:
        return Cost(rho=figures["rho"])
    if "epsilon" not in figures:
        raise PrivspeechError(f"{where}: DP entry ({entry.get('mechanism')}) without epsilon or rho",
                              hint="the ledger cannot account for it; the record's privacy cost is unknown",
                              status=ExitStatus.DATAERR)
    return Cost(epsilon=figures["epsilon"], delta=figures.get("delta", 0.0))


def compose(entries: Iterable[Mapping[str, Any]], where: str = "ledger") -> Cost:
    """The sequential composition of the DP entries among `entries`."""
    total = ZERO
    for i, entry in enumerate(entries):
        cost = cost_of(entry, f"{where}: op {i + 1}")
        if cost is not None:
            total = total + cost
    return total


def speaker_of(record: Record) -> str:
    """The accounting unit of a record: its speaker, or the record itself when the speaker is unknown."""
    return record.speaker if record.speaker else f"(record {record.id or record.audio_filepath})"


def record_cost(record: Record) -> Cost:
    return compose(record.privspeech.ops, record.id or record.audio_filepath)


def per_speaker(records: Iterable[Record], dataset_entries: Iterable[Mapping[str, Any]] = ()) -> dict[str, Cost]:
    """Each speaker's composed cost: their records' ops plus the dataset ledger's entries."""
    shared = compose(dataset_entries, "dataset ledger")
    totals: dict[str, Cost] = {}
    for record in records:
        who = speaker_of(record)
        totals[who] = totals.get(who, shared) + record_cost(record)
    return totals


def check_budget(spent: Cost, new: Cost, *, max_epsilon: float, delta: float, who: str) -> None:
    """Refuse (DATAERR, with the figures) an operation that would take `who` past `max_epsilon` at `delta`."""
    if isinstance(max_epsilon, bool) or not isinstance(max_epsilon, (int, float)) or not max_epsilon > 0:
        raise PrivspeechError(f"--max-epsilon must be greater than 0, not {max_epsilon!r}", status=ExitStatus.USAGE)
    after, after_delta = (spent + new).approx(delta)
    if after > max_epsilon:
        before, _ = spent.approx(delta)
        raise PrivspeechError(
            f"{who}: privacy budget exceeded: spent epsilon {before:.4g}, this operation would bring it to "
            f"{after:.4g} (delta {after_delta:.3g}), over --max-epsilon {max_epsilon:g}",
            hint="lower --epsilon (or --rho), or leave this speaker's records out", status=ExitStatus.DATAERR)


def check_speakers(spent: Mapping[str, Cost], new: Cost, *, max_epsilon: float, delta: float) -> None:
    """:func:`check_budget` for the speaker `new` would take highest (an operation that charges them all)."""
    if spent:
        who = max(spent, key=lambda name: (spent[name] + new).approx(delta)[0])
        check_budget(spent[who], new, max_epsilon=max_epsilon, delta=delta, who=f"speaker {who}")


def check_plan(records: Iterable[Record], new: Cost, *, max_epsilon: float, delta: float,
               dataset_entries: Iterable[Mapping[str, Any]] = ()) -> None:
    """Refuse a batch that charges `new` to each of `records` if it takes any speaker past `max_epsilon`."""
    records = list(records)
    after = per_speaker(records, dataset_entries)
    count: dict[str, int] = {}
    for record in records:
        count[speaker_of(record)] = count.get(speaker_of(record), 0) + 1
    for who, spent in after.items():
        planned = ZERO
        for _ in range(count[who]):
            planned = planned + new
        check_budget(spent, planned, max_epsilon=max_epsilon, delta=delta,
                     who=f"speaker {who} ({count[who]} record(s) in this run)")
