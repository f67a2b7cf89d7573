"""Find what arrived in the inbox on one day, without ever following a link out of it.

Layout: ``inbox/<dept>/<feed>/<YYYY-MM-DD>/<file>`` (the dated folder is the day received), or
``inbox/<dept>/<feed>/<file>`` (received on its modification date, local time).

Skipped silently: hidden files (``.name``), Excel lock files (``~$name``), and partial uploads
(``*.tmp``, ``*.part``, ``*.crdownload``, ``*.filepart``); subfolders of a dated folder; folders
that are not dates. Reported as refused (a manifest record, content never read): symbolic links
(file or folder), anything that is not a regular file, names with ``..`` path components, files
of a department or feed that is not registered or not enabled.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from contracts.model import Contract, Registry

_SKIP_SUFFIX = (".tmp", ".part", ".crdownload", ".filepart", ".swp")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class InboxItem:
    dept: str
    feed: str
    path: Path
    name: str
    relpath: str  # relative to the inbox
    size: int | None = None
    refuse: str | None = None  # Chinese reason when the content must not be read


def _skip(name: str) -> bool:
    if _traversal(name):
        return False  # reported, not silently skipped
    low = name.lower()
    return name.startswith(".") or name.startswith("~$") or low.endswith(_SKIP_SUFFIX)


def _traversal(name: str) -> bool:
    return any(part == ".." for part in re.split(r"[\\/]", name)) or "\x00" in name


def _entries(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _item(dept: str, feed: str, entry: os.DirEntry, rel: str, refuse: str | None) -> InboxItem:
    try:
        st = entry.stat(follow_symlinks=False)
        size = st.st_size
    except OSError:
        size = None
    if refuse is None:
        if entry.is_symlink():
            refuse = "文件是符号链接（快捷方式），出于安全原因不予读取；请直接放入文件本身"
        elif not entry.is_file(follow_symlinks=False):
            refuse = "不是普通文件，不予读取"
        elif _traversal(entry.name):
            refuse = "文件名含有“..”路径成分（疑似路径穿越），出于安全原因不予读取；请改用普通文件名"
    return InboxItem(dept, feed, Path(entry.path), entry.name, rel, size, refuse)


def scan_inbox(
    inbox: Path,
    received: date,
    registry: Registry,
    contracts: dict[str, Contract],
    depts: set[str] | None = None,
) -> list[InboxItem]:
    day = received.isoformat()
    known_depts = {d.code: d for d in registry.departments}
    items: list[InboxItem] = []
    for dept_entry in _entries(inbox):
        dept = dept_entry.name
        if _skip(dept) or (depts is not None and dept not in depts):
            continue
        if dept_entry.is_symlink():
            items.append(_item(dept, "", dept_entry, dept, "部门目录是符号链接，出于安全原因不予读取"))
            continue
        if not dept_entry.is_dir(follow_symlinks=False):
            continue
        for feed_entry in _entries(Path(dept_entry.path)):
            feed = feed_entry.name
            if _skip(feed):
                continue
            rel_feed = f"{dept}/{feed}"
            if feed_entry.is_symlink():
                items.append(_item(dept, feed, feed_entry, rel_feed, "信息类别目录是符号链接，出于安全原因不予读取"))
                continue
            if not feed_entry.is_dir(follow_symlinks=False):
                continue
            refuse = None
            if dept not in known_depts:
                refuse = f"报送部门“{dept}”未在部门登记表（departments.yaml）中登记，文件未处理"
            elif feed not in contracts:
                refuse = f"信息类别“{feed}”不存在或未启用，文件未处理"
            elif feed not in known_depts[dept].feeds:
                refuse = f"部门“{known_depts[dept].name}”未登记报送“{contracts[feed].title}”（{feed}），文件未处理"
            for entry in _entries(Path(feed_entry.path)):
                if _skip(entry.name):
                    continue
                if entry.name == day and not entry.is_symlink() and entry.is_dir(follow_symlinks=False):
                    for f in _entries(Path(entry.path)):
                        if _skip(f.name) or (f.is_dir(follow_symlinks=False) and not f.is_symlink()):
                            continue
                        items.append(_item(dept, feed, f, f"{rel_feed}/{day}/{f.name}", refuse))
                elif entry.name == day and entry.is_symlink():
                    items.append(_item(dept, feed, entry, f"{rel_feed}/{day}", "日期目录是符号链接，出于安全原因不予读取"))
                elif _DAY.match(entry.name) or entry.is_dir(follow_symlinks=False):
                    continue
                else:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        continue
                    if datetime.fromtimestamp(st.st_mtime).date() == received:
                        items.append(_item(dept, feed, entry, f"{rel_feed}/{entry.name}", refuse))
    return items


def read_no_follow(path: Path, limit: int) -> bytes:
    """Read a regular file without following a symbolic link (O_NOFOLLOW), at most ``limit``+1 bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        # one read of the whole file (no join copy of a 400 MB file); the loop covers short reads
        first = os.read(fd, min(limit, st.st_size) + 1)
        if not first or len(first) > limit:
            return first
        chunks, size = [first], len(first)
        while True:
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)
