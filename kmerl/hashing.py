"""Stable content hashes for cache keys and data versions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel


def stable_hash(*parts: Any, length: int = 16) -> str:
    """Hex digest of JSON-serialisable parts (pydantic models included), order-sensitive.

    JSON with sorted keys makes the digest independent of dict order and Python
    version, so the same inputs give the same key on every machine.
    """
    digest = hashlib.blake2b(digest_size=length)
    for part in parts:
        digest.update(_canonical(part))
        digest.update(b"\x1e")
    return digest.hexdigest()


def bytes_hash(data: bytes, length: int = 16) -> str:
    return hashlib.blake2b(data, digest_size=length).hexdigest()


def _canonical(part: Any) -> bytes:
    if isinstance(part, bytes):
        return part
    if isinstance(part, BaseModel):
        part = part.model_dump(mode="json")
    return json.dumps(part, sort_keys=True, separators=(",", ":"), default=str).encode()
