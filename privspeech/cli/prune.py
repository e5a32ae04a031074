"""`privspeech prune`: delete what has passed its retention date inside a privspeech dataset, and explain it."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import ExitStatus, UsageError
from .command import command


@command
def prune(
    env: Env,
    root: Annotated[Optional[Path], typer.Argument(
        help="A dataset folder marked by `privspeech init` (optional with --keyring).", metavar="ROOT",
        show_default=False)] = None,
    manifest: Annotated[Optional[list[str]], typer.Option(
        "--manifest", metavar="FILE", help="Enforce expiry only in these manifests inside ROOT (repeatable) "
        "[default: every *.jsonl under ROOT]; with --keyring, the manifests whose held records keep their epoch's "
        "key (needed).", show_default=False)] = None,
    keyring: Annotated[Optional[Path], typer.Option(
        "--keyring", metavar="DIR", help="Also destroy the keys of this keyring's epochs that ended before now "
        "(less --grace), except epochs holding a record with hold: true in the --manifest files: every copy of "
        "what they encrypted, backups included, becomes unreadable.", file_okay=False)] = None,
    grace: Annotated[str, typer.Option(
        "--grace", metavar="DURATION", help="With --keyring, keep an ended epoch's key this much longer (0 or e.g. "
        "7d).")] = "0",
    at: Annotated[Optional[str], typer.Option(
        "--now", metavar="TIMESTAMP", help="Judge expiry as of this RFC 3339 time instead of now: a later one only "
        "with --dry-run (what would go on that date), an earlier one deletes less.", show_default=False)] = None,
    older_than: Annotated[Optional[str], typer.Option(
        "--older-than", metavar="DURATION", help="Also delete audio and .age files that no record names, by "
        "modification time (30d, 12h, P30D).")] = None,
    any_file: Annotated[bool, typer.Option(
        "--any-file", help="With --older-than, delete files of any kind by age, not only audio and .age "
        "files.")] = False,
    protect: Annotated[Optional[list[str]], typer.Option(
        "--protect", metavar="GLOB", help="Always keep paths (relative to ROOT) matching GLOB, a gitignore pattern "
        "(repeatable; the last match wins): 'legal/*' keeps legal's direct children, 'legal/**' all of legal, "
        "'legal/' all of every folder named legal, '*.keep' (no /) matches at any depth, '!GLOB' unprotects.",
        show_default=False)] = None,
    prune_empty_dirs: Annotated[bool, typer.Option(
        "--prune-empty-dirs", help="Also remove folders the run empties.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", "-n", help="Print the plan (would-delete) and change nothing but the audit log.")] = False,
    wait: Annotated[float, typer.Option(
        "--wait", metavar="SECONDS", min=0, help="Wait this long for another prune run on ROOT to finish.")] = 0.0,
    max_runtime: Annotated[Optional[str], typer.Option(
        "--max-runtime", metavar="DURATION",
        help="Stop cleanly after this long (exit 75; run again to finish).")] = None,
    audit_log: Annotated[Optional[Path], typer.Option(
        "--audit-log", metavar="FILE", help="Append the audit lines here instead of ROOT/.privspeech/audit.jsonl.",
        dir_okay=False)] = None,
):
    """Delete recordings whose retention period has ended, and say why for every file.

    A record whose privspeech.expires_at has passed loses every file it names (audio, ciphertext, the sidecars
    in privspeech.sidecars) and its manifest line. Records with hold: true and paths matching --protect are always
    kept. With --older-than, audio and .age files that no record names go by modification time (never access
    time); older files of other kinds are kept and reported (rule not-managed) unless --any-file is given.

    prune acts only inside a folder marked by `privspeech init`, never follows a symlink, never enters a mount
    point (another filesystem or a bind mount) and re-checks each file just before deleting it. It reads a
    manifest only when the manifest and every folder from ROOT down to it are owned by you or root and not
    writable by group or others (others are skipped with a warning); a record may not name the audit log or
    lock file. A bad manifest line, or a folder it cannot read or more than 200 levels deep, is an error line
    (exit 1) and the rest of ROOT is still pruned.

    Manifests are rewritten in place under a write lease, keeping lines that pipelines append meanwhile; one that
    another process holds open is left until a later run (its files are deleted). Every action (deleted,
    would-delete, kept, skipped, error) is printed as a JSONL line with its rule and dates, and appended to the
    audit log ROOT/.privspeech/audit.jsonl, where each deletion's intent is fsynced before it happens; stderr gets
    warnings and a summary. A second run on the same ROOT exits 75 at once, or waits with --wait.

    Deleting a file is not erasing it: SSDs, snapshots and backups can keep the bytes. Store recordings
    encrypted (privspeech encrypt) and delete the key to destroy every copy.

    Nightly from cron, as a crontab line: `15 3 * * * privspeech prune /srv/calls --wait 600 --max-runtime 2h -q`

    With systemd: a privspeech-prune.service (Type=oneshot, ExecStart=privspeech prune /srv/calls --max-runtime 2h
    -q) started by a privspeech-prune.timer (OnCalendar=daily, Persistent=true).
    """
    from ..console import silence_stdout
    from ..retention import Policy
    from ..retention import prune as run_prune
    from ..timeutil import parse_duration

    if any_file and not older_than:
        raise UsageError("--any-file applies only with --older-than", hint="add --older-than DURATION")
    if root is None and keyring is None:
        raise UsageError("nothing to prune", hint="give ROOT (a folder marked by privspeech init), --keyring DIR, "
                                                  "or both")
    when = _when(at, dry_run)
    ring = _keyring(keyring, manifest, grace) if keyring is not None else None
    runtime = parse_duration(max_runtime).total_seconds() if max_runtime else None
    closed = False

    def emit(line: str) -> None:  # stdout is a report: a closed pipe must not stop the run (the audit log has it)
        nonlocal closed
        if closed:
            return
        try:
            env.stdout.write(line + "\n")
            env.stdout.flush()
        except BrokenPipeError:
            closed = True
            silence_stdout()

    if root is None:
        summary = _prune_keys(ring, manifest, when, grace, dry_run, wait, emit)
    else:
        policy = Policy(at=when, older_than=parse_duration(older_than) if older_than else None,
                        protect=tuple(protect or ()), manifests=tuple(manifest or ()),
                        prune_empty_dirs=prune_empty_dirs, any_file=any_file)
        summary = run_prune(root, policy, dry_run=dry_run, wait=wait, max_runtime=runtime, audit_log=audit_log,
                            emit=emit)
        if ring is not None and summary.status == ExitStatus.OK:
            keys = _prune_keys(ring, manifest, when, grace, dry_run, wait, emit)
            summary.counts.update(keys.counts)
    for warning in summary.warnings:
        env.warn(warning)
    env.info(summary.text(dry_run))
    if any(action == "error" and kind in ("file", "record") for action, kind in summary.counts):
        env.warn("some files could not be deleted; their records stay (see the error lines)")
    if closed and summary.status == ExitStatus.OK:
        return ExitStatus.BROKEN_PIPE  # the run finished, but not all of its report was delivered
    return summary.status


def _when(text, dry_run):
    """The moment expiry is judged at: --now, or now; a future one only for a dry run."""
    from ..errors import DataError
    from ..timeutil import now, parse_ts

    if text is None:
        return now()
    try:
        when = parse_ts(text)
    except DataError as exc:
        raise UsageError(f"--now: {exc.message}", hint=exc.hint) from None
    if when > now() and not dry_run:
        raise UsageError(f"--now {text} is in the future: prune deletes nothing before its time",
                         hint="add --dry-run to see what would go on that date")
    return when


def _keyring(folder, manifests, grace):
    """The keyring --keyring names, checked before anything is pruned."""
    from ..crypto.keyring import Keyring

    if not manifests:
        raise UsageError("--keyring needs the manifests whose held records keep their epoch's key",
                         hint="give them with --manifest FILE (repeatable), e.g. the vault's manifest")
    _grace(grace)
    found = Keyring.open(folder)
    if not found.full:
        raise UsageError(f"{folder}: a recipients view holds no keys to destroy", hint="prune the keyring itself")
    return found


def _grace(text):
    import datetime as dt

    from ..timeutil import parse_duration

    return dt.timedelta(0) if text.strip() in ("0", "0s", "0d") else parse_duration(text)


def _prune_keys(ring, manifests, when, grace, dry_run, wait, emit):
    from ..retention.keys import held_epochs, prune_keyring

    return prune_keyring(ring, at=when, grace=_grace(grace), held=held_epochs(ring, manifests), dry_run=dry_run,
                         wait=wait, emit=emit)
