"""The safe side of pruning: open a marked ROOT, walk it by directory file descriptors, remove by dir_fd.

Nothing here follows a symbolic link or leaves ROOT's mount: paths are tuples of names relative to ROOT
("parts"); every folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor, and
a folder or file whose device or mount id differs from ROOT's (another filesystem, or a bind mount of the
same one) is a mount point, never entered or removed. When executing a plan, folders and files are also
checked against the inode seen while planning. The walk is iterative and goes at most ``MAX_DEPTH`` folders
deep, so it holds at most that many descriptors open.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
import time
from dataclasses import dataclass, field
from typing import Callable

from ..managed import MARKER, STATE_DIR
from ..errors import from_os_error, TryAgain, UsageError
from .statx import Stat, stat_at

Parts = tuple[str, ...]
MAX_DEPTH = 200
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Unsafe(Exception):
    """A path that must not be touched: it changed, is a symlink, leaves ROOT or its mount."""


def show(parts: Parts) -> str:
    """A path relative to ROOT, '/'-separated ('.' for ROOT itself)."""
    return "/".join(parts) or "."


def same_mount(st: Stat, root: Stat) -> bool:
    """True when `st` is on ROOT's filesystem and mount (the mount id is compared where the system gives it)."""
    return st.dev == root.dev and (st.mnt is None or root.mnt is None or st.mnt == root.mnt)


@dataclass
class Root:
    """An open, marked dataset root: its descriptor, identity and the descriptor of `.privspeech/`."""

    path: str
    fd: int
    st: Stat
    state_fd: int

    def close(self) -> None:
        for fd in (self.state_fd, self.fd):
            os.close(fd)

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_root(path: str | os.PathLike) -> Root:
    """Open ROOT for pruning; refuse `/`, the home folder and folders without the privspeech marker.

    ROOT itself may be reached through a symlink the user typed; nothing below it is.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise UsageError(f"{path}: not a folder") from None
        raise from_os_error(exc, path) from None
    try:
        st = stat_at(fd)
        for name, other in _forbidden():
            if (st.dev, st.ino) == other:
                raise UsageError(f"{path}: refusing to prune {name}",
                                 hint="prune a dataset folder made with `privspeech init ROOT`")
        state_fd = _open_state(fd, st, path)
    except BaseException:
        os.close(fd)
        raise
    return Root(path=path, fd=fd, st=st, state_fd=state_fd)


def _forbidden() -> list[tuple[str, tuple[int, int]]]:
    places = [("/", "the root folder /")]
    homes = {os.path.expanduser("~")}
    try:
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    places += [(home, f"the home folder {home}") for home in homes if home and home != "/"]
    found = []
    for place, name in places:
        try:
            st = os.stat(place)
        except OSError:
            continue
        found.append((name, (st.st_dev, st.st_ino)))
    return found


def _open_state(root_fd: int, root: Stat, path: str) -> int:
    unmarked = UsageError(f"{path}: not a folder privspeech manages (no {STATE_DIR}/{MARKER})",
                          hint=f"run `privspeech init {path}` first if privspeech should prune it")
    try:
        state_fd = os.open(STATE_DIR, _DIR_FLAGS, dir_fd=root_fd)
    except OSError:
        raise unmarked from None
    try:
        marker = os.stat(MARKER, dir_fd=state_fd, follow_symlinks=False)
        if not stat.S_ISREG(marker.st_mode) or not same_mount(stat_at(state_fd), root):
            raise unmarked
    except OSError:
        os.close(state_fd)
        raise unmarked from None
    except BaseException:
        os.close(state_fd)
        raise
    return state_fd


@dataclass
class Tree:
    """Everything under ROOT (outside any `.privspeech/` folder), found without following links or leaving ROOT's
    mount."""

    files: dict[Parts, Stat] = field(default_factory=dict)
    dirs: dict[Parts, Stat] = field(default_factory=dict)
    entries: dict[Parts, int] = field(default_factory=dict)  # folder -> number of names in it
    symlinks: set[Parts] = field(default_factory=set)
    other: set[Parts] = field(default_factory=set)  # fifos, sockets, devices
    foreign: set[Parts] = field(default_factory=set)  # mount points: other filesystems and bind mounts
    unreadable: dict[Parts, str] = field(default_factory=dict)  # folders not read or not entered, and why

    def kind(self, parts: Parts) -> str:
        """'file', 'dir', 'symlink', 'other', 'foreign', 'unreadable' or 'absent'."""
        if parts in self.files:
            return "file"
        if parts in self.unreadable:
            return "unreadable"
        if parts in self.dirs:
            return "dir"
        if parts in self.symlinks:
            return "symlink"
        if parts in self.foreign:
            return "foreign"
        return "other" if parts in self.other else "absent"

    def resolve(self, raw: Parts) -> Parts:
        """Follow names (`..` included) from ROOT through real folders only; raises Unsafe on the way out.

        A `..` steps back out of a folder the walk entered by name, so with no symlink on the way it means
        exactly what the kernel would make of it; a symlink, a mount point or a step above ROOT is refused.
        """
        stack: list[str] = []
        for i, name in enumerate(raw):
            here = tuple(stack)
            kind = self.kind(here)
            if kind != "dir":
                if kind == "absent":  # so is everything below it
                    return here + raw[i:]
                raise Unsafe(f"{show(here)} on the way is {_KIND_WORDS[kind]}")
            if name == "..":
                if not stack:
                    raise Unsafe("the path leaves ROOT")
                stack.pop()
            elif name == STATE_DIR:
                raise Unsafe(f"the path enters privspeech's state folder {show(here + (name,))}")
            else:
                stack.append(name)
        return tuple(stack)


_KIND_WORDS = {"symlink": "a symlink", "foreign": "on another filesystem or mount", "file": "a file, not a folder",
               "other": "not a folder", "unreadable": "a folder prune could not read or did not enter"}


def split_path(text: str, base: Parts, root_path: str) -> Parts:
    """The names of `text` relative to ROOT, `..` kept: relative paths start at `base`, absolute ones
    must start with ROOT's path (as given or with its own symlinks resolved). Raises Unsafe otherwise."""
    names = tuple(n for n in text.split("/") if n not in ("", "."))
    if not text.startswith("/"):
        return base + names
    for prefix in {os.path.abspath(root_path), os.path.realpath(root_path)}:
        head = tuple(n for n in prefix.split("/") if n)
        if names[:len(head)] == head:
            return names[len(head):]
    raise Unsafe("an absolute path outside ROOT")


def walk(root: Root, *, deadline: float | None = None) -> Tree:
    """Index every name under ROOT by descriptor: regular files and folders with their stat.

    Folders deeper than ``MAX_DEPTH`` are recorded in ``Tree.unreadable`` and not entered.
    Raises TEMPFAIL when `deadline` (a time.monotonic() value) passes during the walk.
    """
    tree = Tree()
    tree.dirs[()] = root.st
    stack: list[tuple[int, list[Parts]]] = []  # (descriptor, subfolders still to visit) from ROOT down
    try:
        stack.append((os.dup(root.fd), []))
        stack[-1][1].extend(_list(root, stack[-1][0], (), tree, deadline))
        while stack:
            fd, pending = stack[-1]
            if not pending:
                os.close(stack.pop()[0])
                continue
            child = pending.pop()
            child_fd = _enter(root, fd, child, tree)
            if child_fd is not None:
                stack.append((child_fd, []))
                stack[-1][1].extend(_list(root, child_fd, child, tree, deadline))
    finally:
        for fd, _ in stack:
            os.close(fd)
    return tree


def _list(root: Root, fd: int, parts: Parts, tree: Tree, deadline: float | None) -> list[Parts]:
    """Index the names in folder `fd`; returns its subfolders, last first."""
    try:
        it = os.scandir(fd)
    except OSError as exc:
        tree.unreadable[parts] = exc.strerror or str(exc)
        return []
    subdirs, count = [], 0
    with it:
        for entry in it:
            count += 1
            if entry.name == STATE_DIR:  # ROOT's state, or a nested dataset's: never read, never touched
                continue
            child = parts + (entry.name,)
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(child)
                elif entry.is_file(follow_symlinks=False):
                    st = stat_at(fd, entry.name)
                    if not same_mount(st, root.st):
                        tree.foreign.add(child)  # a file bind-mounted over this name
                    elif stat.S_ISREG(st.mode):
                        tree.files[child] = st
                    else:  # swapped while walking: left alone
                        tree.other.add(child)
                elif entry.is_symlink():
                    tree.symlinks.add(child)
                else:
                    tree.other.add(child)
            except FileNotFoundError:  # vanished while walking
                count -= 1
            except OSError as exc:  # a folder we may list but not search (mode r--): its files are not known
                tree.unreadable.setdefault(parts, exc.strerror or str(exc))
    tree.entries[parts] = count
    if deadline is not None and time.monotonic() > deadline:
        raise TryAgain("--max-runtime reached while looking through ROOT; nothing was deleted",
                       hint="give a longer --max-runtime")
    return subdirs[::-1]


def _enter(root: Root, parent: int, child: Parts, tree: Tree) -> int | None:
    """A descriptor of subfolder `child`, or None (recorded as a symlink, mount point or folder not entered)."""
    if len(child) > MAX_DEPTH:
        tree.unreadable[child] = f"more than {MAX_DEPTH} folders below ROOT: not entered"
        return None
    try:
        fd = os.open(child[-1], _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link or file meanwhile
            tree.symlinks.add(child)
        elif exc.errno != errno.ENOENT:
            tree.unreadable[child] = exc.strerror or str(exc)
        return None
    st = stat_at(fd)
    if not same_mount(st, root.st):
        tree.foreign.add(child)
        os.close(fd)
        return None
    tree.dirs[child] = st
    return fd


class Remover:
    """Removes planned files and folders, re-opening each folder from ROOT with O_NOFOLLOW.

    Each folder on the way must still be the (device, inode) planning saw, on ROOT's mount, and each file must
    still be a regular file with the planned device and inode on ROOT's mount (checked by statx just before
    unlinkat). Descriptors of
    the current folder chain are kept open, so a plan sorted by path costs few extra syscalls.
    """

    def __init__(self, root: Root, tree: Tree):
        self.root = root
        self.tree = tree
        self._chain: list[tuple[str, int]] = []  # (name, fd) from ROOT down to the current folder

    def close(self) -> None:
        while self._chain:
            os.close(self._chain.pop()[1])

    def __enter__(self) -> "Remover":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def folder(self, parts: Parts) -> int:
        """A descriptor of folder `parts`, verified against the plan; raises Unsafe or OSError."""
        keep = 0
        while keep < len(self._chain) and keep < len(parts) and self._chain[keep][0] == parts[keep]:
            keep += 1
        while len(self._chain) > keep:
            os.close(self._chain.pop()[1])
        for depth in range(keep, len(parts)):
            parent = self._chain[-1][1] if self._chain else self.root.fd
            try:
                fd = os.open(parts[depth], _DIR_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Unsafe(f"{show(parts[:depth + 1])} is no longer a folder (a symlink now?)") from None
                raise
            self._chain.append((parts[depth], fd))
            self._check(stat_at(fd), parts[:depth + 1], self.tree.dirs)
        return self._chain[-1][1] if self._chain else self.root.fd

    def unlink(self, parts: Parts) -> None:
        """Remove the planned regular file `parts`; raises Unsafe when it is not the file planning saw."""
        self._remove(parts, stat.S_ISREG, self.tree.files, os.unlink)

    def rmdir(self, parts: Parts) -> None:
        """Remove the planned folder `parts` if it is still the same, now-empty folder."""
        self._remove(parts, stat.S_ISDIR, self.tree.dirs, os.rmdir)

    def _remove(self, parts: Parts, is_kind: Callable[[int], bool], planned: dict[Parts, Stat],
                remove: Callable[..., None]) -> None:
        """Remove `parts` with `remove` when it is still of its kind and the very entry planning saw."""
        fd = self.folder(parts[:-1])
        st = stat_at(fd, parts[-1])
        if not is_kind(st.mode):
            raise Unsafe(f"{show(parts)} was replaced since planning")
        self._check(st, parts, planned)
        remove(parts[-1], dir_fd=fd)

    def _check(self, st: Stat, parts: Parts, planned: dict[Parts, Stat]) -> None:
        seen = planned.get(parts)
        if seen is None or (st.dev, st.ino) != (seen.dev, seen.ino):
            raise Unsafe(f"{show(parts)} was replaced since planning")
        if not same_mount(st, self.root.st):
            raise Unsafe(f"{show(parts)} is a mount point now")
