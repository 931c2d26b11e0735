"""Consumers of the journal besides the recorder: each follows the journal
from its own durable cursor (the archiver; later forwarders and the ledger)."""
