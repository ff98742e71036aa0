"""A read-only reader of bbolt files: the store MX Proxy 2.3 kept (spec §7.8).

Written from the page layout of go.etcd.io/bbolt 1.3 (``page.go``, ``db.go``, ``bucket.go``,
``freelist.go``; format version 2, the same as boltdb/bolt), not from a bbolt library: nothing
here writes. The file is read once into memory and walked with a bounds check before every read,
so a truncated, corrupted or foreign file is refused with a :class:`BoltError` saying what is
wrong and where, never an exception from deep inside, an endless loop or a read past the data:

* the two meta pages are checked (magic, version, FNV-1a checksum, page size, page ids below the
  high-water mark) and the newer valid one is used, as bbolt does;
* every page is read only if it lies inside the file and below the high-water mark, carries its
  own id and the expected type, and is reached at most once (no cycles, no page shared by two
  parents, none that is also on the freelist);
* element counts, key/value offsets and sizes must fit in the page and its overflow pages; keys
  must be non-empty and strictly ascending within a bucket; the tree and bucket nesting depths
  are bounded.

Both byte orders are read (bbolt writes the machine's own; a big-endian file is recognised by its
magic).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Mapping

MAGIC = 0xED0CDAED
VERSION = 2
NO_FREELIST = 0xFFFF_FFFF_FFFF_FFFF

BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
FREELIST_PAGE = 0x10
BUCKET_LEAF = 0x01  # a leaf element whose value is a nested bucket
_PAGE_TYPES = {BRANCH_PAGE: "branch", LEAF_PAGE: "leaf", FREELIST_PAGE: "freelist"}

PAGE_HEADER_SIZE = 16  # id u64, flags u16, count u16, overflow u32
ELEMENT_SIZE = 16  # branch: pos u32, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
BUCKET_HEADER_SIZE = 16  # root pgid u64, sequence u64
META_SIZE = 64  # magic, version, pageSize, flags u32; root bucket; freelist, pgid, txid, checksum u64
META_CHECKSUMMED = 56  # the checksum covers the meta up to itself

MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 1 << 20
#: page sizes tried when the first meta page is unreadable (bbolt uses the OS page size)
CANDIDATE_PAGE_SIZES = (4096, 16384, 65536, 8192, 32768, 2048, 1024, 512)
MAX_KEY_SIZE = 32768  # bbolt's MaxKeySize
MAX_TREE_DEPTH = 64  # a B+tree of 2+ keys per page never gets this deep
MAX_BUCKET_DEPTH = 32
MAX_FILE_SIZE = 1 << 30

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
SQLITE_HEADER = b"SQLite format 3\x00"


class BoltError(Exception):
    """The file cannot be read as a bbolt database; the message says why."""


class NotABoltFile(BoltError):
    """The file is of another format (or empty)."""


class UnsupportedBoltFile(BoltError):
    """A bbolt file of a format version this reader does not know."""


class CorruptBoltFile(BoltError):
    """A bbolt file that is truncated or damaged."""


class BoltFileInUse(BoltError):
    """Another process holds the file's bbolt lock (the old MX Proxy is still running)."""


@dataclass(frozen=True)
class Bucket:
    """One bucket's contents: plain key/value pairs and nested buckets (keys in byte order)."""

    items: Mapping[bytes, bytes] = field(default_factory=dict)
    buckets: Mapping[bytes, "Bucket"] = field(default_factory=dict)
    sequence: int = 0


@dataclass(frozen=True)
class BoltFile:
    """A whole bbolt file as read from its newest valid meta page."""

    path: str
    page_size: int
    txid: int
    high_water: int  # pages in use: every page id is below this
    freelist: frozenset[int] | None  # None: written with NoFreelistSync
    root: Bucket
    byte_order: str  # "little" or "big"
    pages: Mapping[str, int] = field(default_factory=dict)  # pages read by type: branch, leaf, overflow, …

    def bucket(self, name: str | bytes) -> Bucket | None:
        key = name.encode() if isinstance(name, str) else name
        return self.root.buckets.get(key)


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bits: bbolt's meta checksum (Go's hash/fnv New64a)."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


@dataclass(frozen=True)
class _Meta:
    index: int
    page_size: int
    root: int
    sequence: int
    freelist: int
    high_water: int
    txid: int


class _Reader:
    """Bounds-checked reads of one in-memory file; every page reached at most once."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.order = "<"
        self.page_size = 0
        self.high_water = 0
        self.used: set[int] = set()
        self.free: frozenset[int] = frozenset()
        self.counts: Counter[str] = Counter()

    # errors -------------------------------------------------------------------------------
    def corrupt(self, what: str) -> CorruptBoltFile:
        return CorruptBoltFile(f"{self.name}: corrupt bbolt file: {what}")

    def unpack(self, fmt: str, buf: bytes, offset: int, limit: int, what: str) -> tuple[int, ...]:
        """``struct.unpack_from`` that first checks the bytes lie inside ``[0, limit)``."""
        size = struct.calcsize(self.order + fmt)
        if offset < 0 or offset + size > limit or limit > len(buf):
            raise self.corrupt(f"{what} lies outside its page (truncated or damaged)")
        return struct.unpack_from(self.order + fmt, buf, offset)

    # meta ---------------------------------------------------------------------------------
    def detect(self) -> None:
        data = self.data
        if not data:
            raise NotABoltFile(f"{self.name}: the file is empty, not a bbolt database")
        if data.startswith(SQLITE_HEADER):
            raise NotABoltFile(f"{self.name}: this is an SQLite database, not a bbolt file")
        if len(data) < PAGE_HEADER_SIZE + META_SIZE:
            raise NotABoltFile(f"{self.name}: too short ({len(data)} bytes) to be a bbolt database")
        magic_le = struct.unpack_from("<I", data, PAGE_HEADER_SIZE)[0]
        magic_be = struct.unpack_from(">I", data, PAGE_HEADER_SIZE)[0]
        if magic_le == MAGIC:
            self.order = "<"
        elif magic_be == MAGIC:
            self.order = ">"
        else:
            # the first meta page may be the damaged one: look for the second at the usual sizes
            for size in CANDIDATE_PAGE_SIZES:
                if len(data) >= size + PAGE_HEADER_SIZE + META_SIZE:
                    for order in ("<", ">"):
                        if struct.unpack_from(order + "I", data, size + PAGE_HEADER_SIZE)[0] == MAGIC:
                            self.order = order
                            return
            raise NotABoltFile(f"{self.name}: not a bbolt database (no bbolt magic number)")

    def meta_at(self, index: int, offset: int) -> _Meta | str:
        """The meta page at ``offset``, or why it is not valid."""
        data = self.data
        if offset + PAGE_HEADER_SIZE + META_SIZE > len(data):
            return "missing (file truncated)"
        page_id, flags, _count, _overflow = struct.unpack_from(self.order + "QHHI", data, offset)
        fields = struct.unpack_from(self.order + "IIIIQQQQQQ", data, offset + PAGE_HEADER_SIZE)
        magic, version, page_size, _flags, root, sequence, freelist, high_water, txid, checksum = fields
        if magic != MAGIC:
            return "bad magic number"
        if version != VERSION:
            return f"format version {version} (this reader knows version {VERSION})"
        start = offset + PAGE_HEADER_SIZE
        if checksum != 0 and checksum != fnv1a_64(data[start:start + META_CHECKSUMMED]):
            return "checksum mismatch"
        if not flags & META_PAGE or page_id != index:
            return f"not marked as meta page {index}"
        if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
            return f"implausible page size {page_size}"
        if high_water < 4 or high_water > len(data) // page_size:
            return (f"claims {high_water} pages of {page_size} bytes but the file holds "
                    f"{len(data) // page_size} (truncated)")
        if not 2 <= root < high_water:
            return f"root page {root} outside the file's {high_water} pages"
        if freelist != NO_FREELIST and not 2 <= freelist < high_water:
            return f"freelist page {freelist} outside the file's {high_water} pages"
        return _Meta(index, page_size, root, sequence, freelist, high_water, txid)

    def choose_meta(self) -> _Meta:
        first = self.meta_at(0, 0)
        sizes = [first.page_size] if isinstance(first, _Meta) else list(CANDIDATE_PAGE_SIZES)
        second: _Meta | str = "missing (file truncated)"
        for size in sizes:
            second = self.meta_at(1, size)
            if isinstance(second, _Meta) and second.page_size == size:
                break
            if isinstance(second, _Meta):
                second = f"page size {second.page_size} differs from the first meta page's"
        valid = [m for m in (first, second) if isinstance(m, _Meta)]
        if not valid:
            if isinstance(first, str) and first.startswith("format version"):
                raise UnsupportedBoltFile(f"{self.name}: bbolt {first}")
            raise self.corrupt(f"both meta pages are invalid (first: {first}; second: {second})")
        if len(valid) == 2 and valid[0].page_size != valid[1].page_size:
            raise self.corrupt("the two meta pages disagree on the page size")
        return max(valid, key=lambda m: m.txid)

    # pages --------------------------------------------------------------------------------
    def page(self, page_id: int, expected: int, what: str) -> tuple[int, int, int]:
        """(offset, end, count) of a page of type ``expected``, claimed once for the whole read."""
        if not 2 <= page_id < self.high_water:
            raise self.corrupt(f"{what} points at page {page_id}, outside the file's {self.high_water} pages")
        offset = page_id * self.page_size
        own_id, flags, count, overflow = self.unpack("QHHI", self.data, offset, len(self.data), f"page {page_id}")
        if own_id != page_id:
            raise self.corrupt(f"page {page_id} carries the id {own_id}")
        if flags != expected:
            raise self.corrupt(f"{what}: page {page_id} has type 0x{flags:02x}, expected 0x{expected:02x}")
        last = page_id + overflow
        if last >= self.high_water:
            raise self.corrupt(f"page {page_id} runs {overflow} overflow pages past the file's end")
        pages = range(page_id, last + 1)
        for n in pages:
            if n in self.used:
                raise self.corrupt(f"page {n} is used twice ({what})")
            if n in self.free:
                raise self.corrupt(f"page {n} is in use ({what}) but listed on the freelist")
        self.used.update(pages)
        self.counts[_PAGE_TYPES[expected]] += 1
        self.counts["overflow"] += overflow
        return offset, (last + 1) * self.page_size, count

    def freelist(self, page_id: int) -> frozenset[int]:
        offset, end, count = self.page(page_id, FREELIST_PAGE, "the freelist")
        start = offset + PAGE_HEADER_SIZE
        if count == 0xFFFF:  # the real count is the first element
            (count,) = self.unpack("Q", self.data, start, end, "the freelist's count")
            start += 8
        if count > (end - start) // 8:
            raise self.corrupt(f"the freelist claims {count} pages but its page holds {(end - start) // 8}")
        ids = struct.unpack_from(f"{self.order}{count}Q", self.data, start) if count else ()
        free = frozenset(ids)
        if len(free) != len(ids):
            raise self.corrupt("the freelist lists a page twice")
        bad = [n for n in free if not 2 <= n < self.high_water]
        if bad:
            raise self.corrupt(f"the freelist lists page {min(bad)}, outside the file's {self.high_water} pages")
        clash = free & self.used
        if clash:
            raise self.corrupt(f"page {min(clash)} is listed on the freelist but in use")
        return free

    # buckets ------------------------------------------------------------------------------
    def bucket(self, root: int, sequence: int, inline: bytes | None, depth: int, where: str) -> Bucket:
        if depth > MAX_BUCKET_DEPTH:
            raise self.corrupt(f"buckets nested deeper than {MAX_BUCKET_DEPTH} levels at {where}")
        items: dict[bytes, bytes] = {}
        buckets: dict[bytes, Bucket] = {}
        previous: bytes | None = None
        for key, value, flags in self.elements(root, inline, where):
            if previous is not None and key <= previous:
                raise self.corrupt(f"keys out of order in bucket {where}")
            previous = key
            if flags & BUCKET_LEAF:
                buckets[key] = self.nested(value, depth, f"{where}/{_show(key)}")
            else:
                items[key] = value
        return Bucket(items=items, buckets=buckets, sequence=sequence)

    def nested(self, value: bytes, depth: int, where: str) -> Bucket:
        if len(value) < BUCKET_HEADER_SIZE:
            raise self.corrupt(f"bucket {where}: header of {len(value)} bytes, expected {BUCKET_HEADER_SIZE}")
        root, sequence = self.unpack("QQ", value, 0, len(value), f"bucket {where} header")
        if root == 0:  # inline bucket: its only (leaf) page follows the header inside the value
            return self.bucket(0, sequence, value[BUCKET_HEADER_SIZE:], depth + 1, where)
        return self.bucket(root, sequence, None, depth + 1, where)

    def elements(self, root: int, inline: bytes | None, where: str) -> Iterator[tuple[bytes, bytes, int]]:
        """Every leaf element of a bucket's tree, in order: (key, value, flags)."""
        if inline is not None:
            yield from self.leaf(inline, 0, len(inline), where, inline_page=True)
            return
        stack: list[tuple[int, int]] = [(root, 0)]
        while stack:
            page_id, depth = stack.pop()
            if depth > MAX_TREE_DEPTH:
                raise self.corrupt(f"bucket {where}: tree deeper than {MAX_TREE_DEPTH} levels")
            offset = page_id * self.page_size
            if not 2 <= page_id < self.high_water:
                raise self.corrupt(f"bucket {where} points at page {page_id}, outside the file's {self.high_water} pages")
            flags = self.unpack("H", self.data, offset + 8, len(self.data), f"page {page_id}")[0]
            if flags == BRANCH_PAGE:
                children = self.branch(page_id, where)
                stack.extend((child, depth + 1) for child in reversed(children))
            else:
                start, end, _count = self.page(page_id, LEAF_PAGE, f"bucket {where}")
                yield from self.leaf(self.data, start, end, where)

    def branch(self, page_id: int, where: str) -> list[int]:
        start, end, count = self.page(page_id, BRANCH_PAGE, f"bucket {where}")
        if count == 0:
            raise self.corrupt(f"branch page {page_id} has no elements")
        self.check_count(count, start, end, page_id)
        children = []
        for i in range(count):
            elem = start + PAGE_HEADER_SIZE + i * ELEMENT_SIZE
            pos, ksize, child = self.unpack("IIQ", self.data, elem, end, f"page {page_id} element {i}")
            self.span(elem + pos, ksize, end, page_id, i)
            children.append(child)
        return children

    def leaf(self, buf: bytes, start: int, end: int, where: str,
             inline_page: bool = False) -> Iterator[tuple[bytes, bytes, int]]:
        _id, flags, count, _overflow = self.unpack("QHHI", buf, start, end, f"bucket {where} page header")
        label = f"the inline page of bucket {where}" if inline_page else f"page {start // self.page_size}"
        if flags != LEAF_PAGE:
            raise self.corrupt(f"{label} has type 0x{flags:02x}, expected a leaf page")
        self.check_count(count, start, end, label)
        for i in range(count):
            elem = start + PAGE_HEADER_SIZE + i * ELEMENT_SIZE
            eflags, pos, ksize, vsize = self.unpack("IIII", buf, elem, end, f"{label} element {i}")
            if eflags & ~BUCKET_LEAF:
                raise self.corrupt(f"{label} element {i} has unknown flags 0x{eflags:x}")
            key_at = elem + pos
            self.span(key_at, ksize + vsize, end, label, i)
            if not 0 < ksize <= MAX_KEY_SIZE:
                raise self.corrupt(f"{label} element {i} has a key of {ksize} bytes")
            yield bytes(buf[key_at:key_at + ksize]), bytes(buf[key_at + ksize:key_at + ksize + vsize]), eflags

    def check_count(self, count: int, start: int, end: int, label: object) -> None:
        if PAGE_HEADER_SIZE + count * ELEMENT_SIZE > end - start:
            raise self.corrupt(f"{_page_label(label)} claims {count} elements, more than fit in it")

    def span(self, at: int, size: int, end: int, label: object, index: int) -> None:
        if size < 0 or at + size > end:
            raise self.corrupt(f"{_page_label(label)} element {index} points past the end of its page")


def _page_label(label: object) -> str:
    return f"page {label}" if isinstance(label, int) else str(label)


def _show(key: bytes) -> str:
    text = key.decode("utf-8", "backslashreplace")
    return text if len(text) <= 60 else text[:57] + "..."


def looks_like_bolt(head: bytes) -> bool:
    """Whether the first bytes of a file (at least 4 KiB of it) carry a bbolt meta page's magic."""
    reader = _Reader(head, "")
    try:
        reader.detect()
    except BoltError:
        return False
    return True


def looks_like_bolt_file(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as fh:
            return looks_like_bolt(fh.read(max(CANDIDATE_PAGE_SIZES) + PAGE_HEADER_SIZE + META_SIZE))
    except OSError:
        return False


def parse_bolt(data: bytes, name: str = "bbolt file") -> BoltFile:
    """Read a whole bbolt file held in memory; raises a :class:`BoltError` subclass when it cannot."""
    reader = _Reader(bytes(data), name)
    reader.detect()
    meta = reader.choose_meta()
    reader.page_size = meta.page_size
    reader.high_water = meta.high_water
    freelist = None if meta.freelist == NO_FREELIST else reader.freelist(meta.freelist)
    reader.free = freelist or frozenset()
    root = reader.bucket(meta.root, meta.sequence, None, 0, "")
    if root.items:
        raise reader.corrupt("the root bucket holds plain values (bbolt's root holds only buckets)")
    return BoltFile(
        path=name,
        page_size=meta.page_size,
        txid=meta.txid,
        high_water=meta.high_water,
        freelist=freelist,
        root=root,
        byte_order="little" if reader.order == "<" else "big",
        pages=dict(reader.counts),
    )


def read_bolt_file(path: str | os.PathLike[str]) -> BoltFile:
    """Open ``path`` read-only (taking bbolt's shared lock, so a running MX Proxy is noticed) and
    read it whole. The file is never written."""
    name = str(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise NotABoltFile(f"{name}: cannot open: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BoltFileInUse(
                    f"{name}: another process holds the bbolt lock (is MX Proxy 2.3 still running? stop it first)"
                ) from None
            # no locking on this file system: read anyway
        size = os.fstat(fd).st_size
        if size > MAX_FILE_SIZE:
            raise NotABoltFile(f"{name}: {size} bytes, larger than the {MAX_FILE_SIZE >> 20} MiB this reader accepts")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise NotABoltFile(f"{name}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)  # releases the lock
    return parse_bolt(data, name)


__all__ = [
    "BoltError", "BoltFile", "BoltFileInUse", "Bucket", "CorruptBoltFile", "NotABoltFile",
    "UnsupportedBoltFile", "fnv1a_64", "looks_like_bolt", "looks_like_bolt_file", "parse_bolt", "read_bolt_file",
]
