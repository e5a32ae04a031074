"""What expires and why: the rules, and the plan they make of one walk of ROOT.

Rules, in order of authority:

1. A record whose ``privspeech.expires_at`` has passed is pruned: every file it names (``audio_filepath`` and
   the paths in ``privspeech.sidecars``, relative to the manifest's folder) is deleted and its line leaves the
   manifest. With explicit manifests only those are enforced; every ``*.jsonl`` under ROOT is read anyway, so
   that files with a record anywhere are known.
2. A record with ``hold: true``, or with any file matching a protect pattern, is kept whole (a record's files go
   together). A file that an expired record shares with a record that is kept stays.
3. With ``older_than``, a regular file that no record names and that is no manifest is deleted when its
   modification time (never its access time) is older than the cutoff, unless a protect pattern matches it or it
   is of a kind privspeech does not manage (audio and ``.age`` files are; see ``any_file``): such files are kept
   and reported.
4. With ``prune_empty_dirs``, folders emptied by the plan are removed too (never ROOT or ``.privspeech/``).

Whose word counts: a manifest is read only when it and every folder from ROOT down to it are owned by the user
running prune or root and not writable by group or others (:mod:`.trust`); another is skipped (an error when
named with ``--manifest``) and names nothing. A line that is no valid record is an error on its own; the
manifest's other lines count, and files under its folder are not deleted by age (the bad line might name them).
A folder prune cannot read, or deeper than ``walk.MAX_DEPTH``, is an error and not entered.

Protect patterns follow gitignore(5) (through ``pathspec``) and match the path relative to ROOT: ``*`` stays
inside one folder (``legal/*`` is legal's direct children), ``legal/`` and ``legal/**`` cover the whole folder, a
pattern without ``/`` (a trailing one aside) matches at any depth, and a later ``!pattern`` unprotects what an
earlier one protected. A record naming a path that leaves ROOT (``..``, an absolute path elsewhere), passes
through a symlink or another filesystem, or names something other than a regular file is an error: none of its
files are touched and it stays in its manifest. So is a record naming a manifest, prune's audit log or lock file
(by device and inode, wherever they are), or a manifest's redo file; these and privspeech's temporary files are
never deleted by age either.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import pathspec

from ..managed import is_managed_file
from ..errors import NotFound, TryAgain, UsageError
from ..fsutil import TMP_SUFFIX
from ..timeutil import format_ts, now, parse_ts
from .manifests import SUFFIX, Line, Manifest, Refused, load
from .rewrite import REDO_SUFFIX
from .walk import Parts, Remover, Root, Tree, Unsafe, show, split_path, walk


BAD_LINES_SHOWN = 10  # per manifest; the last one shown counts the rest


@dataclass(frozen=True)
class Policy:
    """What a prune run enforces.

    Parameters
    ----------
    at : datetime
        The moment expiry is judged against (UTC; default now).
    older_than : timedelta, optional
        Also delete files without a record whose mtime is older than ``at - older_than``.
    protect : tuple of str
        Gitignore patterns of paths (relative to ROOT) that are always kept, in order; one that is invalid or
        protects nothing (blank, a comment) raises UsageError.
    manifests : tuple of str
        Manifests whose expiry is enforced (paths inside ROOT); empty means every ``*.jsonl`` under ROOT.
    prune_empty_dirs : bool
        Remove folders the plan empties.
    any_file : bool
        With `older_than`, delete files of every kind by age, not only audio and ``.age`` files.
    """

    at: dt.datetime = field(default_factory=now)
    older_than: dt.timedelta | None = None
    protect: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()
    prune_empty_dirs: bool = False
    any_file: bool = False
    _spec: pathspec.PathSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_spec", pathspec.PathSpec(list(map(_protect_pattern, self.protect))))

    def protecting(self, rel: str) -> str | None:
        """The protect pattern that keeps `rel` (the last one matching it, when that is not a negation), if any."""
        found = self._spec.check_file(rel)
        return self.protect[found.index] if found.include else None

    def describe(self) -> dict[str, Any]:
        return {"at": format_ts(self.at), "older_than": self.older_than and self.older_than.total_seconds(),
                "protect": list(self.protect), "manifests": list(self.manifests),
                "prune_empty_dirs": self.prune_empty_dirs, "any_file": self.any_file}


def _protect_pattern(text: str) -> pathspec.Pattern:
    """One protect pattern, compiled; raises USAGE for one that is invalid or protects nothing."""
    try:
        pattern = pathspec.lookup_pattern("gitignore")(text)
        problem = None if pattern.include is not None else "a blank or comment line, it protects nothing"
    except ValueError:
        problem = "not a valid gitignore pattern"
    if problem:
        raise UsageError(f"protect pattern '{text}': {problem}", hint="write it as in a .gitignore file: 'legal/*' for a folder's direct children, "
                         "'legal/**' for everything under it, '\\#name' for a name starting with #")
    return pattern


@dataclass
class Action:
    """One decision about one file, folder or manifest record, with the rule (and dates) behind it.

    `action` is ``would-delete`` in a plan; executing it turns it into ``deleted``, ``skipped`` or ``error``.
    ``kept``, ``skipped`` and ``error`` decided while planning stay as they are.
    """

    action: str
    kind: str  # "file", "dir", "record", "manifest" or "line" (of a manifest)
    path: str  # relative to ROOT
    reason: dict[str, Any]
    detail: str | None = None
    size: int | None = None
    links: int | None = None
    parts: Parts = ()
    needs: list["Action"] = field(default_factory=list)  # a record's file deletions

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "kind": self.kind, "path": self.path, "reason": self.reason}
        for name in ("detail", "size", "links"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass
class Plan:
    """Actions in the order they are reported: notes (manifests, lines and folders that were not read), then the
    order they are carried out: files (by path), folders (deepest first), records."""

    tree: Tree
    notes: list[Action]
    files: list[Action]
    dirs: list[Action]
    records: list[Action]
    manifests: dict[Parts, Manifest]

    @property
    def actions(self) -> list[Action]:
        return self.notes + self.files + self.dirs + self.records


def make_plan(root: Root, policy: Policy, *, deadline: float | None = None, dry_run: bool = False,
              reserved: dict[tuple[int, int], str] | None = None) -> Plan:
    """Walk ROOT once, read its trusted manifests and decide every action. Deletes nothing.

    Manifest rewrites that a killed run left are finished first (with `dry_run`, only read as they will be).
    `reserved` maps (device, inode) of files no action may touch (prune's audit log and lock) to their names.
    A manifest, line or folder that cannot be read is reported in ``Plan.notes``, never stops the plan.

    Raises
    ------
    NotFound, UsageError, TryAgain
        For a missing explicit manifest, for one outside ROOT, when `deadline` passes.
    """
    tree = walk(root, deadline=deadline)
    enforced = _explicit(root, tree, policy)
    reserved = reserved or {}
    found = sorted({p for p, st in tree.files.items() if p[-1].endswith(SUFFIX) and (st.dev, st.ino) not in reserved}
                   | enforced)
    planner = _Planner(root, tree, policy, set(found), reserved)
    planner.not_entered()
    manifests = {}
    with Remover(root, tree) as fs:
        for parts in found:
            try:
                manifests[parts] = load(fs, parts, dry_run=dry_run)
            except Refused as exc:
                planner.refused(parts, exc, explicit=parts in enforced)
    for parts in sorted(p for p in tree.symlinks if p[-1].endswith(SUFFIX)):
        planner.files.append(Action("skipped", "file", show(parts), {"rule": "manifest"}, parts=parts,
                                    detail="a symlinked manifest is never read"))
    for parts, manifest in manifests.items():
        planner.bad_lines(manifest)
        for line in manifest.lines:
            planner.record(manifest, line, enforce=not policy.manifests or parts in enforced)
    planner.plan_records()
    if policy.older_than is not None:
        planner.by_age()
    if deadline is not None and time.monotonic() > deadline:
        raise TryAgain("--max-runtime reached while planning; nothing was deleted",
                       hint="give a longer --max-runtime")
    planner.files.sort(key=lambda a: a.parts)
    dirs = planner.empty_dirs() if policy.prune_empty_dirs else []
    return Plan(tree, planner.notes, planner.files, dirs, planner.records, manifests)


def _explicit(root: Root, tree: Tree, policy: Policy) -> set[Parts]:
    chosen = set()
    for text in policy.manifests:
        try:
            parts = tree.resolve(split_path(os.path.abspath(text), (), root.path))
        except Unsafe as exc:
            raise UsageError(f"manifest {text}: {exc}", hint="manifests must be regular files inside ROOT") from None
        kind = tree.kind(parts)
        if kind != "file":
            if kind == "absent":
                raise NotFound(f"manifest {text}: no such file")
            raise UsageError(f"manifest {text}: not a regular file ({kind})")
        chosen.add(parts)
    return chosen


@dataclass
class _Expired:
    manifest: Manifest
    line: Line
    files: list[Parts]
    reason: dict[str, Any]


class _Planner:
    def __init__(self, root: Root, tree: Tree, policy: Policy, manifests: set[Parts],
                 reserved: dict[tuple[int, int], str]):
        self.root, self.tree, self.policy, self.manifests, self.reserved = root, tree, policy, manifests, reserved
        self.notes: list[Action] = []
        self.held_back: dict[Parts, str] = {}  # folder -> a manifest in it with lines prune could not read
        self.files: list[Action] = []
        self.records: list[Action] = []
        self.named: set[Parts] = set()  # files with a record
        self.live: dict[Parts, dict[str, Any]] = {}  # files a kept record names -> that record
        self.expired: list[_Expired] = []

    def not_entered(self) -> None:
        """An error for each folder the walk could not read or did not enter."""
        for parts, why in sorted(self.tree.unreadable.items()):
            self.notes.append(Action("error", "dir", show(parts), {"rule": "unreadable-folder"}, detail=why,
                                     parts=parts))

    def refused(self, parts: Parts, exc: Refused, *, explicit: bool) -> None:
        """Report a manifest that is not read: skipped when untrusted (an error if named), else an error."""
        action = "skipped" if exc.rule == "untrusted-manifest" and not explicit else "error"
        self.notes.append(Action(action, "manifest", show(parts), {"rule": exc.rule}, detail=exc.detail, parts=parts))
        if exc.rule == "unreadable-manifest":
            self.held_back.setdefault(parts[:-1], show(parts))

    def bad_lines(self, manifest: Manifest) -> None:
        """An error for each line that is no valid record; files by age under its folder are held back."""
        shown = manifest.bad[:BAD_LINES_SHOWN]
        for i, (number, why) in enumerate(shown, 1):
            rest = len(manifest.bad) - len(shown) if i == len(shown) else 0
            detail = f"not a valid record: {why}; the line is kept" + (f" ({rest} more bad lines)" if rest else "")
            self.notes.append(Action("error", "line", manifest.name, {"rule": "bad-line", "line": number},
                                     detail=detail, parts=manifest.parts))
        if manifest.bad:
            self.held_back.setdefault(manifest.parts[:-1], manifest.name)

    def record(self, manifest: Manifest, line: Line, *, enforce: bool) -> None:
        """Sort one manifest line into live, kept, expired or error."""
        prov = line.record.privspeech
        where = {"manifest": manifest.name, "line": line.number}
        if line.record.id is not None:
            where["id"] = line.record.id
        files, problem = [], None
        for text in line.paths:
            try:
                parts = self.tree.resolve(split_path(text, manifest.parts[:-1], self.root.path))
            except Unsafe as exc:
                problem = problem or f"{text}: {exc}"
                continue
            kind = self.tree.kind(parts)
            if kind not in ("file", "absent"):
                problem = problem or f"{text}: {show(parts)} is not a regular file ({kind})"
            elif parts in self.manifests:
                problem = problem or f"{text}: {show(parts)} is a manifest"
            elif what := self._reserved(parts):
                problem = problem or f"{text}: {show(parts)} is {what}"
            files.append(parts)
        self.named.update(files)
        expired = enforce and prov.expires_at is not None and parse_ts(prov.expires_at) <= self.policy.at
        if not expired:
            self._live(files, where)
            return
        reason = {"rule": "expired", "expires_at": prov.expires_at, **where}
        glob = next((g for g in map(self.policy.protecting, map(show, files)) if g), None)
        if problem is not None:
            self.records.append(Action("error", "record", manifest.name, reason, parts=manifest.parts,
                                       detail=problem + "; the record and its files are kept"))
        elif prov.hold or glob:
            keep = {"rule": "hold", **where} if prov.hold else {"rule": "protect", "glob": glob, **where}
            for parts in files:
                if self.tree.kind(parts) == "file":
                    self.files.append(self._file("kept", parts, keep, detail=f"expired {prov.expires_at}"))
        else:
            self.expired.append(_Expired(manifest, line, files, reason))
            return
        self._live(files, where)

    def _live(self, files: list[Parts], where: dict[str, Any]) -> None:
        for parts in files:
            self.live.setdefault(parts, where)

    def plan_records(self) -> None:
        """Plan the expired records' deletions now that every kept record is known."""
        planned: dict[Parts, Action] = {}
        for item in self.expired:
            record = Action("would-delete", "record", item.manifest.name, item.reason, parts=item.manifest.parts)
            for parts in item.files:
                if parts in planned:
                    record.needs.append(planned[parts])
                elif self.tree.kind(parts) == "absent":
                    self.files.append(self._file("skipped", parts, item.reason, detail="already absent"))
                elif parts in self.live:
                    self.files.append(self._file("kept", parts, {"rule": "shared", **self.live[parts]},
                                                 detail="also named by a record that is kept"))
                else:
                    planned[parts] = self._file("would-delete", parts, item.reason)
                    self.files.append(planned[parts])
                    record.needs.append(planned[parts])
            self.records.append(record)

    def by_age(self) -> None:
        cutoff = self.policy.at - self.policy.older_than
        limit, stamp = cutoff.timestamp(), format_ts(cutoff)
        for parts, st in self.tree.files.items():
            if st.mtime >= limit or parts in self.named or parts in self.manifests or self._reserved(parts) \
                    or parts[-1].endswith(TMP_SUFFIX):
                continue
            mtime = format_ts(st.mtime)
            glob = self.policy.protecting(show(parts))
            held = next((self.held_back[parts[:n]] for n in range(len(parts)) if parts[:n] in self.held_back), None)
            if held:
                self.files.append(self._file("skipped", parts, {"rule": "unreadable-manifest", "manifest": held},
                                             detail=f"not deleted by age: lines of {held} that prune cannot read "
                                             "might name it"))
            elif glob:
                self.files.append(self._file("kept", parts, {"rule": "protect", "glob": glob, "mtime": mtime}))
            elif not (self.policy.any_file or is_managed_file(parts[-1])):
                self.files.append(self._file("kept", parts, {"rule": "not-managed", "mtime": mtime},
                                             detail="not an audio or .age file: not deleted by age without "
                                             "--any-file"))
            else:
                self.files.append(self._file("would-delete", parts, {"rule": "older-than", "mtime": mtime,
                                                                     "cutoff": stamp}))

    def empty_dirs(self) -> list[Action]:
        gone: dict[Parts, int] = {}
        for action in self.files:
            if action.action == "would-delete":
                gone[action.parts[:-1]] = gone.get(action.parts[:-1], 0) + 1
        dirs = []
        for parts in sorted(self.tree.dirs, key=lambda p: (-len(p), p)):
            if parts and gone.get(parts) and gone[parts] == self.tree.entries.get(parts):
                dirs.append(Action("would-delete", "dir", show(parts), {"rule": "empty-dir"}, parts=parts))
                gone[parts[:-1]] = gone.get(parts[:-1], 0) + 1
        return dirs

    def _reserved(self, parts: Parts) -> str | None:
        """What `parts` is when no action may touch it (prune's own files, a manifest's redo file), else None."""
        if parts[-1].endswith(REDO_SUFFIX):
            return "a manifest's redo file"
        st = self.tree.files.get(parts)
        return self.reserved.get((st.dev, st.ino)) if st else None

    def _file(self, action: str, parts: Parts, reason: dict[str, Any], detail: str | None = None) -> Action:
        st = self.tree.files.get(parts)
        links = st.nlink if st is not None and st.nlink > 1 else None
        if links and action == "would-delete":
            detail = f"{links} hard links: the data stays reachable through the others"
        return Action(action, "file", show(parts), reason, detail=detail, size=st.size if st else None, links=links,
                      parts=parts)
