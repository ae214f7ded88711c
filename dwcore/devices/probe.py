"""What is on a device or file: dwcore superblocks, file systems, partition tables.

:func:`probe` reads the first 128 KiB (and the tail, for a dwcore backup
superblock) and reports every signature it recognises, so that
``dwcore bench pool`` and pool creation can refuse to overwrite a disk in
use: :func:`check_unused` raises unless ``force``.  Recognised: dwcore
superblocks (either copy, damaged or not), ext2/3/4 (``0xEF53`` at 1080),
XFS (``XFSB`` at 0), btrfs (``_BHRfS_M`` at 65600), Linux swap
(``SWAPSPACE2``/``SWAP-SPACE`` at the end of the first 4, 8, 16 or 64 KiB
page), LUKS 1/2 (``LUKS\\xba\\xbe`` at 0), NTFS, FAT, a GPT header
(``EFI PART`` at 512 or 4096) and an MBR partition table (``0x55AA`` at 510
with a non-empty partition entry).  Reading is read-only and unlocked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dwcore.devices.errors import DeviceInUseError, DeviceIOError
from dwcore.devices.superblock import (
    MAGIC,
    MIN_DEVICE_SIZE,
    SUPERBLOCK_SIZE,
    Superblock,
    superblock_offsets,
)
from dwcore.errors import CorruptionError, UnsupportedFormatError

__all__ = ["Signature", "check_unused", "probe", "probe_bytes"]

_HEAD = 128 << 10


@dataclass(frozen=True)
class Signature:
    """One thing found: ``kind`` (``dwcore``, ``ext4``, ``xfs``, ``btrfs``, ``swap``,
    ``luks``, ``ntfs``, ``vfat``, ``gpt``, ``mbr``), where, and a human detail."""

    kind: str
    offset: int
    detail: str


def _dwcore(raw: bytes, offset: int, name: str) -> Signature | None:
    if raw[:8] != MAGIC:
        return None
    try:
        sb = Superblock.decode(raw, name)
    except (CorruptionError, UnsupportedFormatError) as exc:
        return Signature("dwcore", offset, f"damaged or newer dwcore superblock: {exc}")
    return Signature(
        "dwcore",
        offset,
        f"dwcore {name}: pool {sb.pool_id}, device {sb.device_index} of {sb.device_count}, "
        f"layout {sb.layout}, generation {sb.generation}",
    )


def probe_bytes(head: bytes) -> list[Signature]:
    """Signatures found in the first bytes of a device (give at least 128 KiB if you can)."""
    found: list[Signature] = []

    def at(offset: int, magic: bytes) -> bool:
        return head[offset : offset + len(magic)] == magic

    sig = _dwcore(head[:SUPERBLOCK_SIZE], 0, "primary superblock")
    if sig:
        found.append(sig)
    if at(1080, b"\x53\xef"):
        found.append(Signature("ext4", 1080, "ext2/3/4 file system (magic 0xEF53 at 1080)"))
    if at(0, b"XFSB"):
        found.append(Signature("xfs", 0, "XFS file system"))
    if at(65600, b"_BHRfS_M"):
        found.append(Signature("btrfs", 65600, "btrfs file system"))
    for page in (4096, 8192, 16384, 65536):
        if at(page - 10, b"SWAPSPACE2") or at(page - 10, b"SWAP-SPACE"):
            found.append(Signature("swap", page - 10, f"Linux swap ({page}-byte pages)"))
            break
    if at(0, b"LUKS\xba\xbe"):
        found.append(Signature("luks", 0, "LUKS encrypted volume"))
    if at(3, b"NTFS    "):
        found.append(Signature("ntfs", 3, "NTFS file system"))
    elif at(54, b"FAT") or at(82, b"FAT32"):
        found.append(Signature("vfat", 54, "FAT file system"))
    for offset in (512, 4096):
        if at(offset, b"EFI PART"):
            found.append(Signature("gpt", offset, "GPT partition table"))
            break
    if at(510, b"\x55\xaa") and not any(s.kind in ("ntfs", "vfat") for s in found):
        types = [head[446 + 16 * i + 4] for i in range(4)]
        protective = 0xEE in types and any(s.kind == "gpt" for s in found)
        if any(types) and not protective:  # a partition type is set
            found.append(Signature("mbr", 510, "MBR partition table"))
    return found


def probe(path: str | os.PathLike[str]) -> list[Signature]:
    """Everything recognisable on ``path`` (a file or block device); empty when unused."""
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise DeviceIOError(f"{p}: cannot open: {exc.strerror}", p, errno=exc.errno or 5) from exc
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        head = os.pread(fd, _HEAD, 0)
        found = probe_bytes(head)
        if size >= MIN_DEVICE_SIZE and not any(s.kind == "dwcore" for s in found):
            _, backup = superblock_offsets(size)
            sig = _dwcore(os.pread(fd, SUPERBLOCK_SIZE, backup), backup, "backup superblock")
            if sig:
                found.append(sig)
    except OSError as exc:
        raise DeviceIOError(f"{p}: cannot read: {exc.strerror}", p, errno=exc.errno or 5) from exc
    finally:
        os.close(fd)
    return found


def check_unused(path: str | os.PathLike[str], *, force: bool = False) -> list[Signature]:
    """Raise :class:`~dwcore.devices.errors.DeviceInUseError` if ``path`` holds anything
    :func:`probe` recognises, unless ``force``; returns what was found."""
    found = probe(path)
    if found and not force:
        p = os.fspath(path)
        what = "; ".join(f"{s.detail} at offset {s.offset}" for s in found)
        raise DeviceInUseError(
            f"{p}: is in use ({what}); refusing to overwrite it — pass --force (force=True) "
            f"to use it anyway",
            p,
        )
    return found
