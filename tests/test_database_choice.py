"""`make test` runs the database tests twice: on SQLite and on the suite's own PostgreSQL cluster."""

from __future__ import annotations

from django.db import connection


def test_the_test_database_is_the_one_asked_for(db, request):
    assert connection.vendor == request.config.getoption("database")
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:  # the embedded default's concurrency settings are in force
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20_000
