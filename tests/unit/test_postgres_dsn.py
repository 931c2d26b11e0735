"""What a PostgreSQL error may show of a DSN: never its password."""

from __future__ import annotations

from auditlake.postgres_db import redact


def test_redact_hides_passwords_in_both_forms() -> None:
    assert redact("password=s3cret host=h") == "password=*** host=h"
    assert redact("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert redact("host=h user=u") == "host=h user=u"
