"""Pollers: vendor audit-log APIs read on a schedule into the journal."""
