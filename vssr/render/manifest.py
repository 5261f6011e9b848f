"""The work folder's manifest: what is being rendered (the fingerprint), the chunk ranges, and the
segments completed so far with their sizes and sha256 digests."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_write, sha256_file
from .chunk import ChunkResult

__all__ = ["MANIFEST", "Manifest", "describe_changes"]

MANIFEST = "manifest.json"
VERSION = 1


@dataclass(slots=True)
class Manifest:
    fingerprint: dict[str, Any]  # script digest, args, output, encoder options, the output's shape
    ranges: list[tuple[int, int]]
    done: dict[int, ChunkResult] = field(default_factory=dict)

    def save(self, work: Path) -> None:
        data = {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "ranges": [list(r) for r in self.ranges],
            "chunks": [{"index": i, "start": self.ranges[i][0], "end": self.ranges[i][1], **_result_fields(r)}
                       for i, r in sorted(self.done.items())],
        }
        atomic_write(work / MANIFEST, json.dumps(data, indent=1).encode())

    @classmethod
    def load(cls, work: Path) -> Manifest | None:
        path = work / MANIFEST
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        if data.get("version") != VERSION:
            raise ValueError(f"{path} was written by another version of vssr render")
        done = {c["index"]: ChunkResult(c["index"], c["file"], c["frames"], c["size"], c["sha256"])
                for c in data["chunks"]}
        return cls(data["fingerprint"], [(a, b) for a, b in data["ranges"]], done)

    def verified(self, work: Path) -> dict[int, ChunkResult]:
        """The completed chunks whose segment file is present with the recorded size and sha256."""
        good = {}
        for index, result in self.done.items():
            path = work / result.file
            if path.is_file() and path.stat().st_size == result.size and sha256_file(path) == result.sha256:
                good[index] = result
        return good

    def frames_done(self) -> int:
        return sum(r.frames for r in self.done.values())


def _result_fields(result: ChunkResult) -> dict[str, Any]:
    fields = asdict(result)
    del fields["index"], fields["seconds"]
    return fields


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per fingerprint entry that differs."""
    return [f"{key}: was {old.get(key)!r}, now {new.get(key)!r}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
