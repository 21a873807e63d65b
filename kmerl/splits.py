"""Deterministic train/validation/test assignment for sources without official folds."""

from __future__ import annotations

import hashlib

from kmerl.records import Split


def split_for(key: str, val_fraction: float, test_fraction: float) -> Split:
    """Hash ``key`` (a patient id where known) into a split.

    Hashing by patient keeps every ECG of a patient in one split, on every machine
    and in every run, without a table of assignments.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    position = int.from_bytes(digest, "big") / 2**64
    if position < test_fraction:
        return Split.TEST
    if position < test_fraction + val_fraction:
        return Split.VAL
    return Split.TRAIN
