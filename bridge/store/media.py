"""Prepared MMS pictures, served at /media/... behind signed links."""

from __future__ import annotations

from datetime import datetime

from bridge.clock import iso
from bridge.store.db import Database, Row


class Media:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        media_id: str,
        message_id: int,
        content_type: str,
        extension: str,
        data: bytes,
        now: datetime,
    ) -> None:
        self.db.execute(
            "INSERT INTO media (id, message_id, content_type, extension, data, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " message_id = excluded.message_id, content_type = excluded.content_type,"
            " extension = excluded.extension, data = excluded.data,"
            " created_at = excluded.created_at",
            [media_id, message_id, content_type, extension, data, iso(now)],
        )

    def get(self, media_id: str) -> Row | None:
        row = self.db.one("SELECT * FROM media WHERE id = ?", [media_id])
        if row is not None and not isinstance(row["data"], bytes):
            row["data"] = bytes(row["data"])  # PostgreSQL gives a memoryview
        return row
