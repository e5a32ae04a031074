"""The safe side of pruning: open a marked ROOT, walk it by directory file descriptors, remove by dir_fd.

Nothing here follows a symbolic link or leaves ROOT's filesystem. Paths are tuples of names relative to
ROOT ("parts"); every folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor
and checked against the device (and, when executing a plan, the inode) seen while planning.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
import time
from dataclasses import dataclass, field

from ..dataset import MARKER, STATE_DIR
from ..errors import ExitStatus, PrivspeechError, from_os_error

Parts = tuple[str, ...]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Unsafe(Exception):
    """A path that must not be touched: it changed, is a symlink, leaves ROOT or its filesystem."""


def show(parts: Parts) -> str:
    """A path relative to ROOT, '/'-separated ('.' for ROOT itself)."""
    return "/".join(parts) or "."


@dataclass
class Root:
    """An open, marked dataset root: its descriptor, identity and the descriptor of `.privspeech/`."""

    path: str
    fd: int
    dev: int
    ino: int
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
            raise PrivspeechError(f"{path}: not a folder", status=ExitStatus.USAGE) from None
        raise from_os_error(exc, path) from None
    try:
        st = os.fstat(fd)
        for name, other in _forbidden():
            if (st.st_dev, st.st_ino) == other:
                raise PrivspeechError(f"{path}: refusing to prune {name}",
                                      hint="prune a dataset folder made with `privspeech init ROOT`",
                                      status=ExitStatus.USAGE)
        state_fd = _open_state(fd, st.st_dev, path)
    except BaseException:
        os.close(fd)
        raise
    return Root(path=path, fd=fd, dev=st.st_dev, ino=st.st_ino, state_fd=state_fd)


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


def _open_state(root_fd: int, dev: int, path: str) -> int:
    unmarked = PrivspeechError(f"{path}: not a folder privspeech manages (no {STATE_DIR}/{MARKER})",
                               hint=f"run `privspeech init {path}` first if privspeech should prune it",
                               status=ExitStatus.USAGE)
    try:
        state_fd = os.open(STATE_DIR, _DIR_FLAGS, dir_fd=root_fd)
    except OSError:
        raise unmarked from None
    try:
        marker = os.stat(MARKER, dir_fd=state_fd, follow_symlinks=False)
        if not stat.S_ISREG(marker.st_mode) or os.fstat(state_fd).st_dev != dev:
            raise unmarked
    except OSError:
        os.close(state_fd)
        raise unmarked from None
    except BaseException:
        os.close(state_fd)
        raise
    return state_fd


@dataclass(frozen=True)
class FileStat:
    """What planning saw of a regular file."""

    dev: int
    ino: int
    mtime: float
    size: int
    nlink: int


@dataclass
class Tree:
    """Everything under ROOT (outside any `.privspeech/` folder), found without following links or leaving the
    device."""

    files: dict[Parts, FileStat] = field(default_factory=dict)
    dirs: dict[Parts, tuple[int, int]] = field(default_factory=dict)
    entries: dict[Parts, int] = field(default_factory=dict)  # folder -> number of names in it
    symlinks: set[Parts] = field(default_factory=set)
    other: set[Parts] = field(default_factory=set)  # fifos, sockets, devices
    foreign: set[Parts] = field(default_factory=set)  # mount points of other filesystems
    unreadable: dict[Parts, str] = field(default_factory=dict)

    def kind(self, parts: Parts) -> str:
        """'file', 'dir', 'symlink', 'other', 'foreign', 'unreadable' or 'absent'."""
        if parts in self.files:
            return "file"
        if parts in self.dirs:
            return "unreadable" if parts in self.unreadable else "dir"
        if parts in self.symlinks:
            return "symlink"
        if parts in self.foreign:
            return "foreign"
        return "other" if parts in self.other else "absent"

    def resolve(self, raw: Parts) -> Parts:
        """Follow names (`..` included) from ROOT through real folders only; raises Unsafe on the way out.

        A `..` steps back out of a folder the walk entered by name, so with no symlink on the way it means
        exactly what the kernel would make of it; a symlink, another filesystem or a step above ROOT is refused.
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


_KIND_WORDS = {"symlink": "a symlink", "foreign": "on another filesystem", "file": "a file, not a folder",
               "other": "not a folder", "unreadable": "an unreadable folder"}


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
    """Index every name under ROOT by descriptor: regular files with their stat, folders with (dev, inode).

    Raises TEMPFAIL when `deadline` (a time.monotonic() value) passes during the walk.
    """
    tree = Tree()
    tree.dirs[()] = (root.dev, root.ino)
    _scan(root, os.dup(root.fd), (), tree, deadline)
    return tree


def _scan(root: Root, fd: int, parts: Parts, tree: Tree, deadline: float | None) -> None:
    subdirs = []
    try:
        try:
            it = os.scandir(fd)
        except OSError as exc:
            tree.unreadable[parts] = exc.strerror or str(exc)
            return
        count = 0
        with it:
            for entry in it:
                name = entry.name
                count += 1
                if name == STATE_DIR:  # ROOT's state, or a nested dataset's: never read, never touched
                    continue
                child = parts + (name,)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(child)
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        tree.files[child] = FileStat(st.st_dev, st.st_ino, st.st_mtime, st.st_size, st.st_nlink)
                    elif entry.is_symlink():
                        tree.symlinks.add(child)
                    else:
                        tree.other.add(child)
                except FileNotFoundError:  # vanished while walking
                    count -= 1
        tree.entries[parts] = count
        if deadline is not None and time.monotonic() > deadline:
            raise PrivspeechError("--max-runtime reached while looking through ROOT; nothing was deleted",
                                  hint="give a longer --max-runtime", status=ExitStatus.TEMPFAIL)
        for child in subdirs:
            try:
                child_fd = os.open(child[-1], _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link or file meanwhile
                    tree.symlinks.add(child)
                elif exc.errno != errno.ENOENT:
                    tree.dirs[child] = (0, 0)
                    tree.unreadable[child] = exc.strerror or str(exc)
                continue
            st = os.fstat(child_fd)
            if st.st_dev != root.dev:
                tree.foreign.add(child)
                os.close(child_fd)
                continue
            tree.dirs[child] = (st.st_dev, st.st_ino)
            _scan(root, child_fd, child, tree, deadline)
    finally:
        os.close(fd)


class Remover:
    """Removes planned files and folders, re-opening each folder from ROOT with O_NOFOLLOW.

    Each folder on the way must still be the (device, inode) planning saw, and each file must still be a
    regular file with the planned device and inode (checked by fstatat just before unlinkat). Descriptors of
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
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self.tree.dirs.get(parts[:depth + 1]):
                raise Unsafe(f"{show(parts[:depth + 1])} was replaced since planning")
        return self._chain[-1][1] if self._chain else self.root.fd

    def unlink(self, parts: Parts) -> None:
        """Remove the planned regular file `parts`; raises Unsafe when it is not the file planning saw."""
        planned = self.tree.files[parts]
        fd = self.folder(parts[:-1])
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (planned.dev, planned.ino):
            raise Unsafe(f"{show(parts)} was replaced since planning")
        os.unlink(parts[-1], dir_fd=fd)

    def rmdir(self, parts: Parts) -> None:
        """Remove the planned folder `parts` if it is still the same, now-empty folder."""
        fd = self.folder(parts[:-1])
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != self.tree.dirs.get(parts):
            raise Unsafe(f"{show(parts)} was replaced since planning")
        os.rmdir(parts[-1], dir_fd=fd)
