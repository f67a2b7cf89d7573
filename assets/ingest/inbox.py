"""Find what arrived in the inbox on one day, without ever following a link out of it.

Layout: ``inbox/<dept>/<feed>/<YYYY-MM-DD>/<file>`` (the dated folder is the day received), or
``inbox/<dept>/<feed>/<file>`` (received on its modification date, local time).

Skipped: hidden files (``.name``), Excel lock files (``~$name``), partial uploads (``*.tmp``,
``*.part``, ``*.crdownload``, ``*.filepart``), and dated folders of other days (their own night),
except the closed earlier days below.

Late files. A file put into an earlier day's folder after that day's night had read it (a clerk
who finishes an upload the next morning, a forgotten file copied in later) would otherwise never
be read. The night of ``received`` therefore also walks the folders of the ``earlier`` days it is
given: the days within :data:`LATE_WINDOW_DAYS` (31 calendar days, a month's backlog: beyond the
deadline of every contract, 7 working or 7 calendar days, so anything older is long overdue and
resent anyway) whose own night has already read its inbox (``ingest_days``; a day whose night
never ran is left to that night). There, everything not yet in the manifest (compared by place and
SHA-256, in ``assets/ingest/core.py``) is taken in by this night: its ``received_date`` is the
night that actually took it in, not the folder's day, because the office did not have it earlier
and timeliness must not count it as received on time; the manifest row keeps the folder's day in
``late_from`` and says so in ``notes``. Undated files (``dept/feed/file``) whose modification day
is such an earlier day are treated alike. A rerun of the earlier night finds the file in the
manifest and does not take it again; a rerun of the later night gives the same result.
Everything else found ends in the manifest:
- rejected, content never read (no follow, never opened): symbolic links (file or folder, inside
  or outside the inbox), anything that is not a regular file (FIFOs, sockets, devices), names
  with ``..`` path components;
- rejected with the bytes landed (read with O_NOFOLLOW|O_NONBLOCK, regular files only): files of
  a department or feed that is not registered or not enabled, files in a folder that is not a
  valid date (``20261006``, ``2026-10-6``, ``2026-13-45``), files outside the
  ``dept/feed/day`` layout;
- rejected as a folder: folders where a file belongs (a folder inside a dated folder, a folder
  named like a file) and malformed date folders themselves.
Misplaced things belong to no received day: they are recorded once, by the first night that
finds them (the manifest row's ``received_date`` is that night).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable

from contracts.model import Contract, Registry

_SKIP_SUFFIX = (".tmp", ".part", ".crdownload", ".filepart", ".swp")
LATE_WINDOW_DAYS = 31  # how far back a night looks for late files in earlier days' folders
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class InboxItem:
    dept: str
    feed: str
    path: Path
    name: str
    relpath: str  # relative to the inbox
    size: int | None = None
    refuse: str | None = None  # Chinese reason the file is not accepted
    land: bool = False  # refused, but a regular file: its bytes are kept (landed) as evidence
    once: bool = False  # found outside any day's place: recorded by the first night that sees it
    # the day whose place it was found in (its dated folder, or for an undated file its
    # modification day); an earlier day than the night's means a late file. None: no day's place
    day: date | None = None


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


def _is_day(name: str) -> bool:
    if not _DAY.match(name):
        return False
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return True


_FILE_LIKE = re.compile(r"\.(csv|xlsx|xlsm|xls|json|txt|zip)$", re.I)


def _misplaced(dept: str, feed: str, entry: os.DirEntry, rel: str, reason: str) -> InboxItem:
    """An item found where nothing should be: recorded once (not per night), bytes landed when
    it is a regular file (``land``), never read when it is a link or a special file."""
    is_dir = entry.is_dir(follow_symlinks=False) and not entry.is_symlink()
    item = _item(dept, feed, entry, rel, reason if is_dir else None)
    if item.refuse is None:  # a regular file: keep its bytes
        item.refuse, item.land = reason, True
    item.once = True
    return item


def _folder_reason(name: str, rel: str) -> str:
    if _FILE_LIKE.search(name):
        return f"“{rel}”是文件夹而不是文件（名称像文件名），其中内容未处理；请放入文件本身"
    if _DAY.match(name) or re.fullmatch(r"\d{8}|\d{4}[-_./]\d{1,2}[-_./]\d{1,2}", name):
        return (f"日期目录名“{name}”不是有效的 YYYY-MM-DD 日期（例如 2026-10-06），其中文件未处理；"
                "请改为正确日期后重新放入")
    return f"目录“{rel}”不是日期目录（应为 YYYY-MM-DD），其中文件未处理"


def scan_inbox(
    inbox: Path,
    received: date,
    registry: Registry,
    contracts: dict[str, Contract],
    depts: set[str] | None = None,
    earlier: Iterable[date] = (),
) -> list[InboxItem]:
    """Everything of the inbox the night of ``received`` must account for (see the module
    docstring), plus everything in the places of the ``earlier`` days (candidates for late files:
    the caller drops what the manifest already has). Each item carries the ``day`` of its place."""
    days = {received.isoformat(): received} | {d.isoformat(): d for d in earlier if d < received}
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
            if depts is None:
                items.append(_misplaced("", "", dept_entry, dept,
                                        "文件直接放在收件箱根目录，未放入“部门/信息类别/日期”目录，未处理；请放到正确目录后重新报送"))
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
                items.append(_misplaced(dept, "", feed_entry, rel_feed,
                                        "文件直接放在部门目录下，未放入“信息类别/日期”目录，未处理；请放到正确目录后重新报送"))
                continue
            refuse = None
            if dept not in known_depts:
                refuse = f"报送部门“{dept}”未在部门登记表（departments.yaml）中登记，文件未处理"
            elif feed not in contracts:
                refuse = f"信息类别“{feed}”不存在或未启用，文件未处理"
            elif feed not in known_depts[dept].feeds:
                refuse = f"部门“{known_depts[dept].name}”未登记报送“{contracts[feed].title}”（{feed}），文件未处理"

            def take(entry: os.DirEntry, rel: str, day: date) -> None:
                item = _item(dept, feed, entry, rel, refuse)
                if refuse is not None and item.refuse == refuse:
                    item.land = True  # a regular file of an unknown place: keep its bytes
                item.day = day
                items.append(item)

            for entry in _entries(Path(feed_entry.path)):
                if _skip(entry.name):
                    continue
                rel = f"{rel_feed}/{entry.name}"
                is_dir = entry.is_dir(follow_symlinks=False) and not entry.is_symlink()
                if entry.name in days and is_dir:
                    for f in _entries(Path(entry.path)):
                        if _skip(f.name):
                            continue
                        if f.is_dir(follow_symlinks=False) and not f.is_symlink():
                            item = _misplaced(dept, feed, f, f"{rel}/{f.name}", (
                                f"“{rel}/{f.name}”是文件夹而不是文件，其中内容未处理；请把文件直接放在日期目录中"))
                            item.day = days[entry.name]
                            items.append(item)
                            continue
                        take(f, f"{rel}/{f.name}", days[entry.name])
                elif entry.name in days and entry.is_symlink():
                    item = _item(dept, feed, entry, rel, "日期目录是符号链接，出于安全原因不予读取")
                    item.day = days[entry.name]
                    items.append(item)
                elif is_dir and _is_day(entry.name):
                    continue  # another received day: that night's business
                elif is_dir:
                    items.append(_misplaced(dept, feed, entry, rel, _folder_reason(entry.name, rel)))
                    for f in _entries(Path(entry.path)):
                        if not _skip(f.name):
                            items.append(_misplaced(dept, feed, f, f"{rel}/{f.name}",
                                                    f"所在目录“{entry.name}”不是有效的日期目录（应为 YYYY-MM-DD），文件未处理；请放到正确的日期目录后重新报送"))
                else:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    modified = datetime.fromtimestamp(st.st_mtime).date()
                    if modified.isoformat() in days:
                        take(entry, rel, modified)
    return items


def read_no_follow_head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a regular file, without following a symbolic link."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        return os.read(fd, n)
    finally:
        os.close(fd)


def hash_no_follow(path: Path) -> str:
    """SHA-256 of a regular file, read in chunks (never whole in memory), without following a
    symbolic link."""
    import hashlib

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 22):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


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
