"""Memory bounded by the file: what a weights reader may allocate for one file, and capped zip reads.

A hostile checkpoint can declare far more data than it holds: a tensor of 400M elements with
stride 0 over a 1-element storage (663 bytes on disk, 1.6 GB once materialised), or a zip entry
that is a DEFLATE bomb (1.5 MB on disk, 3.2 GB inflated). Every reader charges what it is about
to allocate to a `Budget` of a few times the file's size, *before* allocating, and reads zip
entries through `read_member`, which checks the entry's declared size first and never reads more
than it expects. A refusal costs milliseconds and names the file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..errors import ModelError

__all__ = ["Budget", "read_member"]

_SLACK = 16 << 20
"""Bytes every file may use beyond its multiple of its size (small files, headers, dict keys)."""


class Budget:
    """Bytes a reader may materialise from one file: `factor` x its size + 16 MiB.

    The factor covers legitimate growth: a stored (uncompressed) checkpoint reads each byte once
    and materialises it once (twice for bf16 widened to float32); compressed .npz weights inflate
    a little. Anything above is a file declaring more than it holds.
    """

    def __init__(self, path: str | os.PathLike[str], *, factor: int = 8) -> None:
        self.source = os.fspath(path)
        self.file_size = Path(path).stat().st_size
        self.limit = factor * self.file_size + _SLACK
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        """Account for `nbytes` about to be allocated; ModelError when the file's budget is spent."""
        if nbytes < 0:
            raise ModelError(f"{self.source}: {what} declares a negative size")
        self.used += nbytes
        if self.used > self.limit:
            raise ModelError(
                f"{self.source}: {what} would need {nbytes:,} bytes, more than a {self.file_size:,}-byte file "
                f"can hold (at most {self.limit:,} bytes are read from it); refusing a malformed or hostile file"
            )


def read_member(archive: zipfile.ZipFile, name: str, budget: Budget, *, size: int | None = None) -> bytes:
    """The first `size` bytes of a zip entry (all of it when None), its declared size checked first.

    Raises:
        ModelError: the entry is missing, declares fewer bytes than `size`, exceeds the budget, or
            inflates to less than it declares.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelError(f"{budget.source}: the archive has no entry {name}") from None
    want = info.file_size if size is None else size
    if info.file_size < want:
        raise ModelError(f"{budget.source}: entry {name} holds {info.file_size:,} bytes, {want:,} expected (truncated)")
    budget.charge(want, f"entry {name}")
    with archive.open(info) as member:
        data = member.read(want)  # inflates at most `want` bytes, whatever the entry really holds
    if len(data) != want:
        raise ModelError(f"{budget.source}: entry {name} inflates to {len(data):,} bytes, {want:,} declared")
    return data
