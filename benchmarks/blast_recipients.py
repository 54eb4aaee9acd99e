"""What a blast's recipient bookkeeping costs at store size, on both backends.

``python -m benchmarks.blast_recipients`` (``--sizes 10000 100000``; prints, asserts nothing;
starts a throwaway PostgreSQL unless SMSBRIDGE_TEST_POSTGRES_URL is set).

* **record**: :meth:`bridge.store.blasts.Blasts.add_recipients`, what the confirmation does
  (the ``blast_confirm`` job, after the admin's click was acknowledged).
* **skip**: :meth:`bridge.store.blasts.Blasts.skip_no_longer_opted_in`, what ``blast_start``
  does right before sending (1 in 1,000 recipients opted out since the confirmation).

Both are set-based statements; on PostgreSQL most of ``record`` is the two foreign-key checks
per row (recipient → blast, recipient → customer).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bridge.store import NEW, OPTED_IN, OPTED_OUT, open_store
from tests import pg_server

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def run(backend: str, size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = (
            f"sqlite:///{Path(tmp) / 'b.db'}" if backend == "sqlite" else pg_server.fresh_database()
        )
        store = open_store(url)
        store.migrate()
        store.stores.sync({"PIZZA": "C1"})
        phones = [f"+1415{n:07d}" for n in range(size)]
        store.customers.add_many("PIZZA", [(p, "", "") for p in phones], now=NOW)
        rows = store.customers.audience_of("PIZZA")
        store.customers.set_statuses([(r[0], NEW, OPTED_IN) for r in rows], how="list", now=NOW)
        blast = store.blasts.add({"store": "PIZZA", "status": "confirmed", "total": size})
        began = time.perf_counter()
        store.blasts.add_recipients(blast, [(r[0], r[1]) for r in rows])
        record = time.perf_counter() - began
        gone = [(r[0], OPTED_IN, OPTED_OUT) for r in rows[::1000]]
        store.customers.set_statuses(gone, how="texted STOP", now=NOW)
        began = time.perf_counter()
        skipped = store.blasts.skip_no_longer_opted_in(blast, OPTED_IN, NOW)
        skip = time.perf_counter() - began
        store.close()
    print(
        f"{backend:8} {size:>7,} recipients: record {record * 1000:,.0f} ms,"
        f" skip {skip * 1000:,.0f} ms ({skipped} skipped)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    for backend in ("sqlite", "postgres"):
        for size in args.sizes:
            run(backend, size)


if __name__ == "__main__":
    main()
