"""Retention epochs: consecutive UTC periods of whole days, weeks, months or years (``1d``, ``2w``, ``1mo``,
``1y``), counted from 1970 (weeks from Monday 1970-01-05), for which a keyring keeps one key each."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ..errors import UsageError
from ..timeutil import format_date

UTC = dt.timezone.utc
_ORIGIN = dt.datetime(1970, 1, 1, tzinfo=UTC)
_MONDAY = dt.datetime(1970, 1, 5, tzinfo=UTC)
_PERIOD = re.compile(r"^([1-9][0-9]{0,3})(d|w|mo|y)$")
_BEFORE = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Epoch:
    """One period: named by the UTC date it starts on (``2026-12-01``), from `start` (included) to `end` (not)."""

    id: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Period:
    """The length of a keyring's epochs: `count` days, weeks, months or years."""

    count: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip())
        if not match:
            raise UsageError(f"not an epoch period: {text!r}", hint="write a whole number of days, weeks, months or "
                                                                    "years: 1d, 1w, 1mo, 3mo, 1y")
        return cls(int(match.group(1)), match.group(2))

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    def containing(self, moment: dt.datetime) -> Epoch:
        """The epoch `moment` falls in."""
        moment = moment.astimezone(UTC)
        if self.unit in ("d", "w"):
            origin, days = (_ORIGIN, self.count) if self.unit == "d" else (_MONDAY, 7 * self.count)
            index = (moment - origin) // dt.timedelta(days=days)
            start = origin + dt.timedelta(days=index * days)
            return Epoch(format_date(start), start, start + dt.timedelta(days=days))
        months = self.count * (12 if self.unit == "y" else 1)
        index = ((moment.year - 1970) * 12 + moment.month - 1) // months
        start, end = _month(index * months), _month((index + 1) * months)
        return Epoch(format_date(start), start, end)

    def ending_by(self, moment: dt.datetime) -> Epoch:
        """The epoch whose end is the first at or after `moment`: a record that expires at `moment` is kept under
        its key, and no longer."""
        return self.containing(moment - _BEFORE)

    def named(self, epoch_id: str) -> Epoch:
        """The epoch called `epoch_id`; refuses a name that does not start one of this period's epochs."""
        try:
            start = dt.datetime.strptime(epoch_id, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            start = None
        epoch = self.containing(start) if start is not None else None
        if epoch is None or epoch.id != epoch_id:
            raise UsageError(f"no {self} epoch starts on {epoch_id!r}", hint="epochs are named by the UTC date they "
                                                                             "start on, e.g. 2026-12-01")
        return epoch

    def through(self, first: dt.datetime, last: dt.datetime) -> list[Epoch]:
        """The epochs from the one holding `first` to the one holding `last`, in order."""
        epochs = [self.containing(first)]
        while epochs[-1].end <= last:
            epochs.append(self.containing(epochs[-1].end))
        return epochs


def _month(index: int) -> dt.datetime:
    """The first instant of month `index` counted from January 1970."""
    year, month = divmod(index, 12)
    return dt.datetime(1970 + year, month + 1, 1, tzinfo=UTC)


def parse_until(text: str, start: dt.datetime) -> dt.datetime:
    """`--until`: a UTC date (``2027-12-31``), an RFC 3339 timestamp, or a time after `start`: months or years
    (``3mo``, ``1y``) or a duration (``400d``, ``12w``)."""
    from ..errors import DataError
    from ..timeutil import parse_duration, parse_ts

    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00Z"
    if re.match(r"\d{4}-", text):
        try:
            return parse_ts(text)
        except DataError as exc:
            raise UsageError(f"--until: {exc.message}", hint=exc.hint) from None
    months = re.fullmatch(r"([1-9][0-9]{0,3})(mo|y)", text)
    if not months:
        return start + parse_duration(text)
    index = (start.year - 1970) * 12 + start.month - 1 + int(months.group(1)) * (12 if months.group(2) == "y" else 1)
    first = _month(index)
    last_day = (_month(index + 1) - dt.timedelta(days=1)).day
    return start.replace(year=first.year, month=first.month, day=min(start.day, last_day))
