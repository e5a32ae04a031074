"""RFC 3339 UTC timestamps and human durations (`90d`, `12h`, `P90D`)."""

from __future__ import annotations

import datetime as dt
import re

from .errors import DataError, UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIMPLE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)


def now() -> dt.datetime:
    """The current time, UTC, whole seconds."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def format_ts(moment: dt.datetime | float) -> str:
    """`moment` (a datetime, or POSIX seconds such as a file's mtime) as RFC 3339 in UTC, whole seconds, with a `Z`
    suffix: the one form privspeech writes times in."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_date(moment: dt.datetime) -> str:
    """The UTC date, ``2026-12-01``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d")


def parse_ts(text: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp; a time without zone is refused (it would be ambiguous)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        raise DataError(f"not an RFC 3339 timestamp: {text!r}", hint="write e.g. 2026-11-22T10:02:11Z") from None
    if moment.tzinfo is None:
        raise DataError(f"timestamp without a time zone: {text!r}", hint="end it with Z for UTC")
    return moment.astimezone(dt.timezone.utc)


def parse_duration(text: str) -> dt.timedelta:
    """Parse `90d`, `12h`, `30m`, `45s`, `2w` or ISO 8601 `P90D`/`PT12H`; must be positive."""
    match = _SIMPLE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        iso = _ISO.match(text.strip())
        if not iso or not any(iso.groups()) or text.strip().upper().endswith("T"):
            raise UsageError(f"not a duration: {text!r}", hint="write e.g. 90d, 12h, 30m or P90D")
        weeks, days, hours, minutes, secs = (float(g) if g else 0.0 for g in iso.groups())
        seconds = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise UsageError(f"duration must be positive: {text!r}")
    return dt.timedelta(seconds=seconds)
