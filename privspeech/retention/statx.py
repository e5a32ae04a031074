"""stat with the mount id: which mount a folder or file is reached through, so bind mounts are recognised.

``st_dev`` tells filesystems apart but not a bind mount of another folder of the same filesystem; the mount id
does. It comes from ``statx(2)`` with ``STATX_MNT_ID`` (Linux 5.8, glibc 2.28), called through ctypes; for
an open descriptor on older systems, from the ``mnt_id:`` line of ``/proc/self/fdinfo/FD``. Where neither
exists the mount id is None and callers compare ``st_dev`` alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from typing import NamedTuple

_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_STATX_BASIC_STATS = 0x7FF
_STATX_MNT_ID = 0x1000
# struct statx: mask, blksize, attributes, nlink, uid, gid, mode, pad, ino, size; mtime at 0x70; dev at 0x88
_HEAD = struct.Struct("<IIQIIIHHQQ")
_MTIME = struct.Struct("<qI")
_DEV = struct.Struct("<II")
_MNT_ID = struct.Struct("<Q")


class Stat(NamedTuple):
    """What prune needs of a folder or file; `mnt` is the mount id, or None where the system cannot tell."""

    mode: int
    uid: int
    dev: int
    ino: int
    size: int
    nlink: int
    mtime: float
    mnt: int | None


def _load_statx():
    try:
        func = ctypes.CDLL(None, use_errno=True).statx
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
    func.restype = ctypes.c_int
    return func


_statx = _load_statx()


def stat_at(dir_fd: int, name: str = "") -> Stat:
    """Stat `name` in folder `dir_fd` without following a symlink, or `dir_fd` itself when `name` is empty.

    Raises OSError as ``os.stat`` does.
    """
    if _statx is not None:
        buf = ctypes.create_string_buffer(256)
        flags = _AT_SYMLINK_NOFOLLOW | (0 if name else _AT_EMPTY_PATH)
        if _statx(dir_fd, os.fsencode(name), flags, _STATX_BASIC_STATS | _STATX_MNT_ID, buf) == 0:
            mask, _, _, nlink, uid, _, mode, _, ino, size = _HEAD.unpack_from(buf)
            sec, nsec = _MTIME.unpack_from(buf, 0x70)
            major, minor = _DEV.unpack_from(buf, 0x88)
            mnt = _MNT_ID.unpack_from(buf, 0x90)[0] if mask & _STATX_MNT_ID else None
            if mnt is None and not name:
                mnt = fdinfo_mount_id(dir_fd)
            return Stat(mode, uid, os.makedev(major, minor), ino, size, nlink, sec + nsec / 1e9, mnt)
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EPERM):  # no statx in this kernel (or a sandbox forbids it): os.stat
            raise OSError(err, os.strerror(err), name or None)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False) if name else os.fstat(dir_fd)
    return Stat(st.st_mode, st.st_uid, st.st_dev, st.st_ino, st.st_size, st.st_nlink, st.st_mtime,
                None if name else fdinfo_mount_id(dir_fd))


def fdinfo_mount_id(fd: int) -> int | None:
    """The mount id of an open descriptor from ``/proc/self/fdinfo`` (Linux 3.15), or None."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as fh:
            for line in fh:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
