"""Acceptance tests: the real `auditlake` CLI as a subprocess, over HTTP."""
