"""Consent statuses, as CRM Text numbers them (reference §4)."""

from __future__ import annotations

NEW, OPTED_IN, PENDING, OPTED_OUT = 1, 3, 4, 5
STATUS_NAMES = {
    NEW: "new guest",
    OPTED_IN: "opted in",
    PENDING: "opt-in pending",
    OPTED_OUT: "opted out",
}
