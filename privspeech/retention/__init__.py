"""Retention enforcement: delete what has passed its date inside a privspeech dataset, and nothing else.

``prune(ROOT, Policy(...))`` acts only on a folder marked by ``privspeech init`` (``ROOT/.privspeech/root.json``)
and refuses ``/``, the home folder and unmarked folders. The rules (what expires and why) are in
:mod:`privspeech.retention.policy`; in short: records whose ``expires_at`` has passed, in every ``*.jsonl``
manifest under ROOT or the ones named, lose all their files and their manifest line; optionally audio and ``.age``
files without any record (files of any kind with ``any_file``) go by modification time; ``hold: true`` and protect
patterns (gitignore-style) always win.

Safety, against the symlink races that gave tmpreaper, systemd-tmpfiles and others their CVEs
(CVE-2019-3461, CVE-2018-6954, CVE-2021-3997), and against manifests written by someone else:

- ROOT is walked by directory descriptors (``O_NOFOLLOW | O_DIRECTORY``), iteratively and at most 200 folders
  deep; no symlink is ever followed, no mount point is ever entered (device and mount id, so bind mounts of the
  same filesystem too), only regular files (and, when asked, folders the run emptied) are removed, with
  ``unlinkat`` relative to a descriptor of their folder.
- A manifest is obeyed only when it and every folder from ROOT down to it are owned by the user running prune or
  root and not writable by group or others (:mod:`~privspeech.retention.trust`). A bad line, an unreadable
  manifest or folder fails only itself (an ``error`` action), never the run.
- Manifest paths are resolved name by name from ROOT's descriptor; one that leaves ROOT (``..``, an absolute
  path elsewhere), passes through a symlink or a mount point, or names a manifest, prune's audit log or lock is
  an error and its record is kept whole.
- Planning and deleting are separate steps. Before each deletion every folder on the way is re-opened from
  ROOT and must still be the folder planning saw (device, inode and mount), and ``statx`` must find the same
  regular file. A folder swapped for a symlink, or a file swapped for another, is reported and left alone.
  What remains is a name swapped inside a folder between ``statx`` and ``unlinkat`` by someone who can
  write to that folder; ``unlinkat`` never follows links, so at worst that name, inside ROOT, goes.
- A dry run reports exactly the plan a real run carries out. Every action (``deleted``, ``would-delete``,
  ``kept``, ``skipped``, ``error``) carries its rule and dates, goes to the caller (stdout JSONL in the CLI) and
  to an append-only audit log, ``ROOT/.privspeech/audit.jsonl``, where each batch of deletions is announced by
  fsynced ``intent`` lines before it happens. Manifests are rewritten in place under a write lease, keeping the
  lines appended meanwhile (:mod:`~privspeech.retention.rewrite`).
- One run per ROOT (``flock`` on ``.privspeech/prune.lock``): a second fails at once with exit status 75 or
  waits; ``max_runtime`` stops a run cleanly between deletions (exit status 75, run again to finish).

Honest limits: deleting a file removes a name, not the data. On SSDs (wear levelling, TRIM timing),
copy-on-write and journalling filesystems, snapshots, backups, replicas and other hard links the bytes can
survive for a long time; prune reports hard links it sees but cannot reach copies outside ROOT. Store
recordings encrypted (``privspeech encrypt``) and keep the keys apart, one key per retention period: deleting
the key destroys every copy at once, wherever it is ("crypto-shredding").
"""

from .policy import Action, Plan, Policy, make_plan
from .run import PruneSummary, execute, prune
from .walk import Root, open_root

__all__ = ["Action", "Plan", "Policy", "Root", "PruneSummary", "execute", "make_plan", "open_root", "prune"]
