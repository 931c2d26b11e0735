"""Vendor code, one folder per vendor: what auditlake knows of a vendor's
events (constants, the mapping of its payloads onto the canonical event, its
CloudEvents preset) and the typed tables (projections) the recorder keeps of
them. Pure, like the core, but for reading its own DDL files. A new vendor,
or a new table of one, touches its folder and the registries below.
"""

from __future__ import annotations

from auditlake.vendors import chainguard
from auditlake.vendors.preset import CloudEventsPreset
from auditlake.vendors.projection import Projection

PRESETS: dict[str, CloudEventsPreset] = {"chainguard": chainguard.PRESET}
PROJECTIONS: tuple[Projection, ...] = (chainguard.PULLS,)
