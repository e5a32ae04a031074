"""Privacy accounting over the ledger: the DP entries in records' ``ops`` (and the dataset's ledger file),
composed per unit, per source recording and per speaker.

A DP figure means something only for its unit, what two neighbouring inputs differ in (``sample``,
``window:W``, ``utterance``, ``speaker``), so figures of different units are never added: every total is
one unit's.

- **Within one source recording**, the releases of one unit compose sequentially: pure epsilons add, zCDP
  rhos add, approximate-DP deltas add. Records derived from a common ancestor carry the ancestor's ops, so
  a release counts once however many records carry it (an entry's ``release_id``; entries without one are
  compared whole).
- **Across a speaker's recordings**, record-level units (``sample``, ``window:W``, ``utterance``) compose in
  parallel: neighbouring inputs differ within one recording, so the speaker's figure is the largest of
  their recordings' totals (pure epsilon, rho and delta each at its largest). It protects one unit of one
  recording; it says nothing of the speaker's recordings taken together.
- **Unit ``speaker``** (``privspeech stats``, the dataset's ledger) is one speaker's whole contribution:
  every such release about the speaker adds up. Dataset-ledger entries charge every speaker.

Which records are one source recording: those with the same keyed source HMAC (``privspeech.source.hmac``
under one key), and those with the same source id (``privspeech.source.id``, else the record's id, else its
path), unless their HMACs under one key show they are different files. Which speaker: the keyed source
speaker (``privspeech.source.speaker``, which ``scan -k`` and ``anonymize -k`` record), else the record's
speaker; speakers found on one recording are one speaker (runs without a persistent key give each speaker
a fresh pseudonym), and a recording without either is its own speaker.

A total is reported as ``(epsilon, delta)`` at a chosen delta: ``epsilon_pure + zcdp_epsilon(rho, delta)``
at ``delta_approx + delta``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import DataError, UsageError
from ..manifest import Record
from .calibration import check_delta, zcdp_epsilon

SPEAKER_UNIT = "speaker"


@dataclass(frozen=True)
class Cost:
    """A composed privacy cost: pure ``epsilon``, zCDP ``rho`` and approximate-DP ``delta`` parts."""

    epsilon: float = 0.0
    rho: float = 0.0
    delta: float = 0.0

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.epsilon + other.epsilon, self.rho + other.rho, self.delta + other.delta)

    def __mul__(self, times: int) -> "Cost":
        return Cost(self.epsilon * times, self.rho * times, self.delta * times)

    def most(self, other: "Cost") -> "Cost":
        """Each part at its larger value: a bound on the parallel composition of the two."""
        return Cost(max(self.epsilon, other.epsilon), max(self.rho, other.rho), max(self.delta, other.delta))

    def approx(self, delta: float) -> tuple[float, float]:
        """``(epsilon, delta_total)``: the cost as approximate DP when the zCDP part is converted at `delta`."""
        check_delta(delta)
        if self.rho == 0:
            return self.epsilon, self.delta
        return self.epsilon + zcdp_epsilon(self.rho, delta), self.delta + delta


ZERO = Cost()


@dataclass(frozen=True)
class Release:
    """One DP entry: its identity (for de-duplication), unit, cost, and whether its noise was private."""

    key: str
    unit: str
    cost: Cost
    private: bool


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
            raise DataError(f"{where}: {name} must be a finite number >= 0, not {value!r}")
        figures[name] = float(value)
    if "rho" in figures:
        return Cost(rho=figures["rho"])
    if "epsilon" not in figures:
        raise DataError(f"{where}: DP entry ({entry.get('mechanism')}) without epsilon or rho",
                        hint="the ledger cannot account for it; the record's privacy cost is unknown")
    return Cost(epsilon=figures["epsilon"], delta=figures.get("delta", 0.0))


def release_of(entry: Mapping[str, Any], where: str = "ledger entry") -> Release | None:
    """The release a ledger entry records (None when it is not a DP operation); one without a unit is refused."""
    cost = cost_of(entry, where)
    if cost is None:
        return None
    unit = entry.get("unit")
    if not isinstance(unit, str) or not unit:
        raise DataError(f"{where}: DP entry ({entry.get('mechanism')}) without a unit",
                        hint="a DP figure means nothing without its unit; the record's privacy cost is unknown")
    key = entry.get("release_id") or json.dumps(entry, sort_keys=True, default=str)
    return Release(str(key), unit, cost, entry.get("private") is not False)


def releases(entries: Iterable[Mapping[str, Any]], where: str = "ledger") -> list[Release]:
    """The DP releases among `entries` (ops or dataset-ledger lines), in order."""
    found = (release_of(entry, f"{where}: op {i + 1}") for i, entry in enumerate(entries))
    return [release for release in found if release is not None]


def record_releases(record: Record) -> list[Release]:
    return releases(record.privspeech.ops, record.id or record.audio_filepath)


def compose(found: Iterable[Release]) -> dict[str, Cost]:
    """Sequential composition per unit of distinct releases (a release counted twice counts once)."""
    totals: dict[str, Cost] = {}
    seen: set[str] = set()
    for release in found:
        if release.key not in seen:
            seen.add(release.key)
            totals[release.unit] = totals.get(release.unit, ZERO) + release.cost
    return totals


def record_level(unit: str) -> bool:
    """True for units within one recording (sample, window:W, utterance): they compose in parallel across
    recordings. Any other unit is taken as the speaker's whole contribution (the cautious reading)."""
    return unit in ("sample", "utterance") or unit.startswith("window:")


@dataclass
class Row:
    """One line of the accounting: a speaker's (or record's) total in one unit (`unit` None: no DP release)."""

    who: str
    unit: str | None
    cost: Cost
    composition: str
    records: int
    recordings: int
    releases: int
    not_private: int

    def to_dict(self, *, delta: float, key: str = "speaker") -> dict[str, Any]:
        eps, total_delta = self.cost.approx(delta)
        return {key: self.who, "unit": self.unit, "epsilon": eps, "delta": total_delta,
                "pure_epsilon": self.cost.epsilon, "rho": self.cost.rho, "composition": self.composition,
                "records": self.records, "recordings": self.recordings, "releases": self.releases,
                "not_private_ops": self.not_private}


class _Union:
    """Union-find over hashable nodes."""

    def __init__(self):
        self._parent: dict[Any, Any] = {}

    def find(self, node: Any) -> Any:
        self._parent.setdefault(node, node)
        while self._parent[node] != node:
            self._parent[node] = self._parent[self._parent[node]]
            node = self._parent[node]
        return node

    def join(self, a: Any, b: Any) -> None:
        self._parent[self.find(a)] = self.find(b)


def _source(record: Record, name: str) -> str | None:
    """A text field of the record's ``privspeech.source`` (anything else, as a hostile line may hold, is absent)."""
    value = (record.privspeech.source or {}).get(name)
    return value if isinstance(value, str) and value else None


def _source_id(record: Record) -> str:
    return _source(record, "id") or record.id or record.audio_filepath


def _hmac_node(record: Record) -> tuple | None:
    mac = _source(record, "hmac")
    return ("hmac", _source(record, "key"), mac) if mac else None


def _speaker_label(record: Record) -> str | None:
    return _source(record, "speaker") or record.speaker or None


class Ledger:
    """The DP releases of `records` and of the dataset's ledger (`dataset_entries`), grouped by source
    recording and by speaker as the module describes."""

    def __init__(self, records: Iterable[Record], dataset_entries: Iterable[Mapping[str, Any]] = ()):
        self.records = list(records)
        self.dataset = releases(dataset_entries, "dataset ledger")
        self._releases = [record_releases(r) for r in self.records]
        sources = _Union()
        keys_by_id: dict[str, set] = {}
        for record in self.records:
            node = _hmac_node(record)
            keys_by_id.setdefault(_source_id(record), set()).add(node[1] if node else None)
        for i, record in enumerate(self.records):
            sources.find(("record", i))
            node = _hmac_node(record)
            if node is not None:
                sources.join(("record", i), node)
            keys = keys_by_id[_source_id(record)]
            if None in keys or len(keys) > 1:  # no HMACs under one key to tell these records apart
                sources.join(("record", i), ("id", _source_id(record)))
        source = [sources.find(("record", i)) for i in range(len(self.records))]
        speakers = _Union()
        for i, record in enumerate(self.records):
            speakers.find(("source", source[i]))
            if _speaker_label(record) is not None:
                speakers.join(("source", source[i]), ("speaker", _speaker_label(record)))
        self._groups: dict[Any, dict[Any, list[int]]] = {}  # speaker -> source recording -> record indices
        labels: dict[Any, set[str]] = {}
        for i, record in enumerate(self.records):
            group = speakers.find(("source", source[i]))
            self._groups.setdefault(group, {}).setdefault(source[i], []).append(i)
            if _speaker_label(record) is not None:
                labels.setdefault(group, set()).add(_speaker_label(record))
        self._names = {group: " = ".join(sorted(labels[group])) if group in labels else
                       f"(recording {_source_id(self.records[next(iter(members.values()))[0]])})"
                       for group, members in self._groups.items()}
        self._by_source = {s: compose(r for i in idx for r in self._releases[i])
                           for members in self._groups.values() for s, idx in members.items()}
        self._by_speaker = {group: compose(r for idx in members.values() for i in idx for r in self._releases[i])
                            for group, members in self._groups.items()}
        self._shared = compose(self.dataset)

    def _total(self, group: Any, unit: str, added: Mapping[Any, Cost] | None = None) -> Cost:
        """A speaker's total in `unit`, with `added` charged to some of their recordings (record-level units)."""
        if record_level(unit):
            total = ZERO
            for source in self._groups[group]:
                total = total.most(self._by_source[source].get(unit, ZERO) + (added or {}).get(source, ZERO))
        else:
            total = self._by_speaker[group].get(unit, ZERO)
        return total + self._shared.get(unit, ZERO)

    def rows(self) -> list[Row]:
        """Each speaker's total per unit, in order of first appearance (a speaker without DP releases: one row
        with unit None and cost zero)."""
        rows = []
        for group, members in self._groups.items():
            indices = [i for idx in members.values() for i in idx]
            found = {r.key: r for i in indices for r in self._releases[i]} | {r.key: r for r in self.dataset}
            units = dict.fromkeys(r.unit for r in found.values())
            for unit in units:
                if record_level(unit):
                    with_unit = [s for s, idx in members.items() if unit in self._by_source[s]]
                    composition = f"largest over {len(with_unit)} recording(s) of the sum within each"
                    counts = (sum(len(members[s]) for s in with_unit), len(with_unit))
                else:
                    composition = "sum over every release about the speaker"
                    counts = (len(indices), len(members))
                if unit in self._shared:
                    composition += ", plus the dataset ledger's"
                unit_releases = [r for r in found.values() if r.unit == unit]
                rows.append(Row(self._names[group], unit, self._total(group, unit), composition, *counts,
                                len(unit_releases), sum(not r.private for r in unit_releases)))
            if not units:
                rows.append(Row(self._names[group], None, ZERO, "no DP release", len(indices), len(members), 0, 0))
        return rows

    def record_rows(self) -> list[Row]:
        """Each record's own total per unit (its ops composed sequentially)."""
        rows = []
        for record, found in zip(self.records, self._releases):
            name = record.id or record.audio_filepath
            rows += [Row(name, unit, cost, "sum over the record's own releases", 1, 1,
                         sum(r.unit == unit for r in found), sum(r.unit == unit and not r.private for r in found))
                     for unit, cost in compose(found).items()] or [Row(name, None, ZERO, "no DP release", 1, 1, 0, 0)]
        return rows

    def table(self, *, delta: float, per_record: bool = False,
              max_epsilon: float | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """`privspeech budget`'s lines: per speaker and unit (or per record and unit) as dicts, and the lines whose
        epsilon at `delta` is over `max_epsilon` (each unit held to it on its own), said in words."""
        lines, over = [], []
        for row in self.record_rows() if per_record else self.rows():
            line = row.to_dict(delta=delta, key="record" if per_record else "speaker")
            lines.append(line)
            if max_epsilon is not None and line["epsilon"] > max_epsilon:
                over.append(f"{row.who} in unit {row.unit} ({line['epsilon']:.4g})")
        return lines, over

    def check_run(self, entry: Mapping[str, Any], *, max_epsilon: float, delta: float, hint: str) -> None:
        """Refuse (DATAERR, with the figures) a run that adds the release `entry` describes to every record
        (record-level unit: to each of its recordings once per record; unit speaker: to each speaker once)
        if it takes any speaker's total in that unit past `max_epsilon`."""
        if isinstance(max_epsilon, bool) or not isinstance(max_epsilon, (int, float)) or not max_epsilon > 0:
            raise UsageError(f"--max-epsilon must be greater than 0, not {max_epsilon!r}")
        new = release_of(entry, "this run's release")
        worst = None
        for group, members in self._groups.items():
            count = sum(len(idx) for idx in members.values())
            if record_level(new.unit):
                after = self._total(group, new.unit, {s: new.cost * len(idx) for s, idx in members.items()})
            else:
                after = self._total(group, new.unit) + new.cost
            spent = after.approx(delta)[0]
            if worst is None or spent > worst[0]:
                worst = (spent, after.approx(delta)[1], group, count)
        if worst is not None and worst[0] > max_epsilon:
            spent, after_delta, group, count = worst
            before = self._total(group, new.unit).approx(delta)[0]
            raise DataError(
                f"speaker {self._names[group]}, unit {new.unit}: privacy budget exceeded: spent epsilon {before:.4g}, "
                f"this operation ({count} record(s) in this run) would bring it to {spent:.4g} (delta "
                f"{after_delta:.3g}), over --max-epsilon {max_epsilon:g}", hint=hint)
