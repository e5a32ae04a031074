"""`prune --keyring`: destroy the keys of epochs that have ended (crypto-erasure), keeping the epoch of any held
record, one run per keyring at a time, every decision in the keyring's audit log before and after."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Callable

from ..crypto.keyring import Keyring, epoch_of_record
from ..errors import NotPermitted, PrivspeechError, from_os_error
from ..lockfile import exclusive_lock
from ..managed import STATE_DIR
from ..manifest import read_jsonl
from ..timeutil import format_ts, now
from ..trust import distrust
from .audit import AUDIT_NAME, AuditLog
from .lock import LOCK_NAME
from .policy import Action
from .run import PruneSummary


def held_epochs(keyring: Keyring, manifests: list[str]) -> dict[str, list[str]]:
    """The epochs of `keyring` that records with ``hold: true`` in `manifests` were encrypted under, with those
    records' ids. A manifest that anyone but this user or root could have written is refused: it could lift a
    hold."""
    held: dict[str, list[str]] = defaultdict(list)
    for manifest in manifests:
        try:
            why = distrust(manifest)
            with open(manifest, encoding="utf-8") as stream:
                records = list(read_jsonl(stream, base_dir=Path(manifest).parent, name=manifest))
        except OSError as exc:
            raise from_os_error(exc, manifest) from None
        if why is not None:
            raise NotPermitted(f"refusing the holds of {manifest}: {why}", hint="only a manifest that nobody but you "
                               "or root can write may decide which keys are destroyed")
        for record in records:
            epoch = epoch_of_record(record, keyring)
            if record.privspeech.hold and epoch is not None:
                held[epoch].append(record.id or record.audio_filepath)
    return held


def prune_keyring(keyring: Keyring, *, at: dt.datetime, grace: dt.timedelta, held: dict[str, list[str]],
                  dry_run: bool = False, wait: float = 0.0, emit: Callable[[str], None] | None = None) -> PruneSummary:
    """Destroy the key of every epoch that ended before ``at - grace`` and holds no held record (with `dry_run`,
    only say so); each decision is a JSONL line for `emit` and the audit log, and a destruction's intent is in the
    log, fsynced, before it happens."""
    summary = PruneSummary()
    state = keyring.path / STATE_DIR
    with exclusive_lock(state / LOCK_NAME, wait=wait, who="prune run",
                        hint="wait for it, or pass --wait SECONDS"):
        audit = AuditLog(None, uuid.uuid4().hex, state / AUDIT_NAME)
        try:
            audit.write({"event": "begin", "keyring": os.path.abspath(keyring.path), "dry_run": dry_run,
                         "pid": os.getpid(), "at": format_ts(at), "grace_s": grace.total_seconds()})
            for known in keyring.epochs(at):
                action = _decide(keyring, known, at, grace, held, dry_run)
                if action is None:
                    continue
                if action.action == "destroyed":
                    audit.write({"event": "intent", "kind": "key", "path": action.path})
                    audit.flush()
                    action = _destroy(keyring, known.epoch.id, action)
                summary.counts[(action.action, "key")] += 1
                line = action.to_json()
                audit.write_json(line)
                if emit is not None:
                    emit(line)
            audit.write({"event": "end", "status": int(summary.status),
                         "counts": {f"{a} {k}": n for (a, k), n in sorted(summary.counts.items())}})
        finally:
            audit.close()
    return summary


def _decide(keyring: Keyring, known, at: dt.datetime, grace: dt.timedelta, held: dict[str, list[str]],
            dry_run: bool) -> Action | None:
    """What becomes of one epoch's key (None: nothing to say, the epoch is running or its key is gone)."""
    epoch = known.epoch
    if known.state == "destroyed" and not keyring.key_path(epoch.id).exists():
        return None
    if epoch.end > at:
        return None
    path = os.path.relpath(keyring.key_path(epoch.id), keyring.path)
    reason = {"rule": "epoch-ended", "epoch": epoch.id, "end": format_ts(epoch.end)}
    if epoch.end > at - grace:
        return Action("kept", "key", path, {**reason, "rule": "grace", "until": format_ts(epoch.end + grace)})
    if epoch.id in held:
        return Action("kept", "key", path, {**reason, "rule": "hold", "records": held[epoch.id]})
    return Action("would-destroy" if dry_run else "destroyed", "key", path, reason)


def _destroy(keyring: Keyring, epoch_id: str, action: Action) -> Action:
    """Destroy one key; an error becomes the action's outcome (the key stays, and a later run tries again)."""
    try:
        keyring.destroy(epoch_id, at=now())
    except (PrivspeechError, OSError) as exc:
        return Action("error", "key", action.path, action.reason, detail=str(exc))
    return action
