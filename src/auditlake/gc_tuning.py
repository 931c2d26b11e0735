"""Garbage-collector settings for the long-running processes."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Exclude every object alive now (modules, classes, the app) from later
    collections, so a full collection scans only what requests created
    instead of the whole program each time."""
    gc.collect()
    gc.freeze()
