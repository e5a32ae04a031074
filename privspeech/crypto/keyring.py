"""A keyring: one age X25519 identity per retention epoch, so that destroying an epoch's key makes every copy of
what was encrypted to it unreadable at once (crypto-erasure).

Layout of a keyring folder DIR (marked like a dataset folder, in ``DIR/.privspeech/``)::

    DIR/.privspeech/keyring.json        the marker: keyring id, epoch period, whether identities need a passphrase
    DIR/identities/EPOCH.key            an age identity file (0600, never overwritten), EPOCH its start date
    DIR/identities/EPOCH.destroyed      what is left of a destroyed epoch key: when it was destroyed
    DIR/recipients/EPOCH.txt            the epoch's recipient (age1...)
    DIR/recipients/.privspeech/keyring.json   the same marker, as a recipients-only view

``DIR/recipients/`` can be copied as it is to machines that encrypt and must never decrypt; ``--keyring`` takes
either folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import CannotWrite, DataError, NotFound, NotPermitted, UsageError, WrongKey, from_os_error
from ..fsutil import fsync_dir, make_dirs, write_bytes
from ..lockfile import exclusive_lock
from ..managed import STATE_DIR
from ..timeutil import format_date, format_ts, now, parse_ts
from . import identities as _identities
from . import passphrase as _passphrase
from .epochs import Epoch, Period

MARKER = "keyring.json"
IDENTITIES = "identities"
RECIPIENTS = "recipients"
KEY_SUFFIX = ".key"
TOMBSTONE_SUFFIX = ".destroyed"
RECIPIENT_SUFFIX = ".txt"
_HINT = "create one with: privspeech keyring init DIR --period 1mo"
KEYS_LOCK_WAIT = 60.0  # seconds


@dataclass(frozen=True)
class EpochState:
    """An epoch the keyring knows: 'active' (not ended at `at`), 'expired' (ended, key still there) or
    'destroyed' (with when)."""

    epoch: Epoch
    state: str
    destroyed_at: str | None = None


@dataclass(frozen=True)
class Keyring:
    """An opened keyring folder (`full`) or recipients view of one."""

    path: Path
    id: str
    period: Period
    protected: bool
    full: bool

    @classmethod
    def init(cls, path: str | os.PathLike, period: Period, *, protected: bool = False) -> Keyring:
        """Create the keyring folder `path` (or open it again when it is one with the same settings)."""
        path = Path(path)
        if (path / STATE_DIR / MARKER).exists():
            found = cls.open(path)
            if not found.full or found.period != period or found.protected != protected:
                raise UsageError(f"{path}: already a keyring ({found.describe()})",
                                 hint="a keyring keeps its period and protection; create another folder")
            return found
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UsageError(f"{path}: exists and is not an empty folder", hint="give a new folder for the keyring")
        marker = {"privspeech": 1, "kind": "keyring", "id": secrets.token_hex(8), "period": str(period),
                  "protected": protected, "created_at": format_ts(now())}
        make_dirs(path)
        for folder, mode in ((path, 0o700), (path / IDENTITIES, 0o700), (path / RECIPIENTS, 0o755)):
            make_dirs(folder).chmod(mode)
        for folder, view in ((path, "full"), (path / RECIPIENTS, "recipients")):
            write_bytes(make_dirs(folder / STATE_DIR) / MARKER, (json.dumps({**marker, "view": view}) + "\n").encode())
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Keyring:
        """The keyring (or recipients view) at `path`; refuses a folder that is not one, and a keyring whose
        identities folder others can reach."""
        path = Path(path)
        try:
            marker = json.loads((path / STATE_DIR / MARKER).read_bytes())
            full = marker["view"] == "full"
            found = cls(path, marker["id"], Period.parse(marker["period"]), bool(marker["protected"]), full)
        except FileNotFoundError:
            if not path.is_dir():
                raise NotFound(f"{path}: no such folder", hint=_HINT) from None
            raise UsageError(f"{path}: not a privspeech keyring", hint=_HINT) from None
        except (OSError, ValueError, KeyError, TypeError, UsageError):
            raise DataError(f"{path}: damaged keyring marker {STATE_DIR}/{MARKER}",
                            hint="restore it from the keyring's backup") from None
        if full:
            _check_private(path / IDENTITIES, "keyring folder")
        return found

    def describe(self) -> str:
        kind = "keyring" if self.full else "recipients view of keyring"
        return f"{kind} {self.id}, epochs of {self.period}{', passphrase-protected' if self.protected else ''}"

    def recipient(self, epoch: Epoch, *, create: bool = True) -> str:
        """The recipient of `epoch`; a full keyring without a passphrase creates its identity on first use."""
        found = self._read_recipient(epoch)
        if found is not None:
            return found
        if not self.full or self.protected or not create:
            why = "a recipients view cannot create keys" if not self.full else "its identity needs the passphrase"
            raise NotFound(f"keyring {self.path}: no key for epoch {epoch.id} ({why})",
                           hint=f"on the keyring's machine run: privspeech keyring extend KEYRING --until "
                                f"{format_date(epoch.end)}")
        return self.create(epoch)

    def create(self, epoch: Epoch, passphrase: _passphrase.Passphrase | None = None) -> str:
        """Create `epoch`'s identity (and its recipient) unless it exists; returns the recipient. Refuses an epoch
        whose key was destroyed."""
        if not self.full:
            raise UsageError(f"{self.path}: a recipients view cannot create keys", hint="run this on the keyring")
        with self._creating():
            found = self._read_recipient(epoch)
            if found is not None:
                return found
            self.check_live(epoch.id)
            if self._key(epoch.id).exists():  # a run died between the two files: the key stands, its recipient follows
                recipient = _identities.recipient(self.identities(epoch.id, passphrase)[0])
            else:
                recipient = _identities.write_identity_file(self._key(epoch.id), passphrase=passphrase)
            write_bytes(self._recipient_path(epoch.id), (recipient + "\n").encode())
            return recipient

    def identities(self, epoch_id: str, passphrase: _passphrase.Passphrase | None = None) -> list:
        """The identities of the epoch `epoch_id` (WrongKey when its key was destroyed or never made)."""
        if not self.full:
            raise WrongKey(f"{self.path}: a recipients view holds no keys", hint="decrypt with the keyring itself")
        self.check_live(epoch_id)
        path = self._key(epoch_id)
        _check_private(path, "keyring file")
        try:
            found, _ = _identities.load_identity_file(path, passphrase=passphrase if self.protected else None)
        except NotFound:
            raise WrongKey(f"keyring {self.path} has no key for epoch {epoch_id}",
                           hint="is this the keyring the file was encrypted with?") from None
        return found

    def epochs(self, at: dt.datetime | None = None) -> list[EpochState]:
        """Every epoch the keyring knows of, in order, with its state at `at` (default: now)."""
        at = at or now()
        names: dict[str, str | None] = {}
        places = [(self._recipient_path("x").parent, RECIPIENT_SUFFIX)]
        if self.full:
            places += [(self.path / IDENTITIES, KEY_SUFFIX), (self.path / IDENTITIES, TOMBSTONE_SUFFIX)]
        for folder, suffix in places:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                for name in os.listdir(folder):
                    if name.endswith(suffix) and not name.startswith("."):
                        names.setdefault(name.removesuffix(suffix), None)
        found = []
        for epoch_id in sorted(names):
            epoch = self.period.named(epoch_id)
            destroyed = self.destroyed_at(epoch_id)
            state = "destroyed" if destroyed else "expired" if epoch.end <= at else "active"
            found.append(EpochState(epoch, state, destroyed))
        return found

    def destroyed_at(self, epoch_id: str) -> str | None:
        """When the key of `epoch_id` was destroyed, if it was."""
        try:
            return json.loads(self._tombstone(epoch_id).read_bytes())["destroyed_at"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return "(date unreadable)"

    def destroy(self, epoch_id: str, *, at: dt.datetime) -> None:
        """Destroy the key of `epoch_id` for good: note it (fsynced), overwrite the identity file in place and
        fsync it, unlink it and fsync the folder, then drop the recipient. A run that died part-way is finished by
        the next call."""
        if not self.full:
            raise UsageError(f"{self.path}: a recipients view holds no keys to destroy")
        with self._creating():
            if self.destroyed_at(epoch_id) is None:
                body = {"epoch": epoch_id, "destroyed_at": format_ts(at), "keyring": self.id}
                write_bytes(self._tombstone(epoch_id), (json.dumps(body) + "\n").encode(), private=True)
            _shred(self._key(epoch_id))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._recipient_path(epoch_id))
            for folder in (self.path / IDENTITIES, self.path / RECIPIENTS):
                fsync_dir(folder)

    def key_path(self, epoch_id: str) -> Path:
        return self._key(epoch_id)

    def _read_recipient(self, epoch: Epoch) -> str | None:
        try:
            text = self._recipient_path(epoch.id).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"keyring {self.path}: unreadable recipient of epoch {epoch.id}: {exc}") from None
        if self.full and self.destroyed_at(epoch.id) is not None:
            return None
        return text

    def check_live(self, epoch_id: str) -> None:
        """Refuse (WrongKey) an epoch whose key was destroyed."""
        destroyed = self.destroyed_at(epoch_id)
        if destroyed is not None:
            raise WrongKey(f"epoch {epoch_id}: its key was destroyed on {destroyed} (keyring {self.path})",
                           hint="what was encrypted to it cannot be decrypted any more, by design")

    def _creating(self):
        """One process at a time creates or destroys keys in this keyring (others wait up to a minute)."""
        return exclusive_lock(self.path / STATE_DIR / "keys.lock", wait=KEYS_LOCK_WAIT, who="keyring writer",
                              hint="another privspeech process is creating or destroying keys here; run again")

    def _key(self, epoch_id: str) -> Path:
        return self.path / IDENTITIES / f"{epoch_id}{KEY_SUFFIX}"

    def _tombstone(self, epoch_id: str) -> Path:
        return self.path / IDENTITIES / f"{epoch_id}{TOMBSTONE_SUFFIX}"

    def _recipient_path(self, epoch_id: str) -> Path:
        base = self.path if not self.full else self.path / RECIPIENTS
        return base / f"{epoch_id}{RECIPIENT_SUFFIX}"


def _check_private(path: Path, what: str) -> None:
    """Refuse a keyring file or folder that group or others can reach."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None
    if stat.S_ISLNK(mode) or mode & 0o077:
        raise NotPermitted(f"{what} {path} is {'a symlink' if stat.S_ISLNK(mode) else f'mode {mode & 0o777:o}'}: "
                           f"group or others could read keys", hint=f"run: chmod go= {path}")


def _shred(path: Path) -> None:
    """Overwrite the file at `path` with zeros in place, fsync it, unlink it (gone already: nothing to do)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise from_os_error(exc, str(path), writing=True) from None
    try:
        size = os.fstat(fd).st_size
        written = 0
        while written < size:
            written += os.pwrite(fd, bytes(min(size - written, 1 << 16)), written)
        os.fsync(fd)
    except OSError as exc:
        raise CannotWrite(f"{path}: could not overwrite the key: {exc.strerror}",
                          hint="the key is not destroyed yet; fix the cause and run prune again") from None
    finally:
        os.close(fd)
    os.unlink(path)


def epoch_of_expiry(keyring: Keyring, expires_at: str) -> Epoch:
    """The epoch a record expiring at `expires_at` (RFC 3339) is encrypted under."""
    return keyring.period.ending_by(parse_ts(expires_at))


def epoch_of_record(record, keyring: Keyring) -> str | None:
    """The epoch the record's latest encryption used in `keyring`, if it names one."""
    for op in reversed(record.privspeech.ops):
        if op.get("op") == "encrypt":
            found = op.get("keyring") or {}
            return found.get("epoch") if found.get("id") == keyring.id else None
    return None


def keyring_identities(keyring: Keyring, record, passphrase: _passphrase.Passphrase | None, *,
                       others: bool = False) -> list:
    """The keys of `keyring` that may open the file of `record`: its epoch's, when the record names one, else every
    live epoch's. With `others` (more identities were given) a destroyed or missing epoch key is no error."""
    epoch_id = epoch_of_record(record, keyring)
    if epoch_id is None:
        live = [known.epoch.id for known in keyring.epochs() if known.state != "destroyed"]
        return [identity for name in live for identity in _cached(keyring, name, passphrase)]
    try:
        return _cached(keyring, epoch_id, passphrase)
    except WrongKey:
        if others:
            return []
        raise


_CACHE: dict[tuple[str, str], list] = {}


def _cached(keyring: Keyring, epoch_id: str, passphrase: _passphrase.Passphrase | None) -> list:
    """An epoch's identities, loaded once per process (a protected key costs a second of scrypt)."""
    keyring.check_live(epoch_id)  # a key destroyed since it was loaded is not used again
    key = (str(keyring.path.resolve()), epoch_id)
    if key not in _CACHE:
        _CACHE[key] = keyring.identities(epoch_id, passphrase)
    return _CACHE[key]
