"""How long ``smsbridge consent export`` takes for a store's whole consent ledger, on SQLite.

``python -m benchmarks.consent_export [--events 100000]`` (prints, asserts nothing): fills a
temporary SQLite database with one store's customers and their consent events (four per
customer), then writes the CSV to a null sink and prints events, seconds, events per second and
the peak memory the export itself allocated (tracemalloc), which stays flat: the ledger is read
a page of 1,000 rows at a time.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.clock import iso
from bridge.consent import NEW, OPTED_IN, OPTED_OUT, PENDING
from bridge.consent_export import export
from bridge.store import open_store

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
STEPS = [(NEW, PENDING), (PENDING, OPTED_IN), (OPTED_IN, OPTED_OUT), (OPTED_OUT, OPTED_IN)]


class Null(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    events = parser.parse_args().events
    customers = max(1, events // len(STEPS))
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
        store.migrate()
        store.stores.sync({"PIZZA": "C1"})
        store.customers.add_many(
            "PIZZA",
            [(f"+1415{n:07d}", f"Customer {n}", "") for n in range(customers)],
            now=NOW,
        )
        ids = [row["id"] for row in store.customers.of_store("PIZZA")]
        rows = [
            (cid, iso(NOW + timedelta(seconds=n)), a, b, "texted START", "start", "")
            for n, (cid, (a, b)) in enumerate((cid, step) for cid in ids for step in STEPS)
        ]
        with store.transaction():
            for i in range(0, len(rows), 500):
                chunk = rows[i : i + 500]
                store.db.execute(
                    "INSERT INTO consent (customer_id, at, status_from, status_to, how, text,"
                    " actor) VALUES " + ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in chunk),
                    [value for row in chunk for value in row],
                )
        started = time.perf_counter()
        written = export(store, "PIZZA", Null())
        seconds = time.perf_counter() - started
        tracemalloc.start()  # a second run for memory (tracing slows it down)
        export(store, "PIZZA", Null())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        store.close()
    print(
        f"consent export (SQLite): {written:,} events in {seconds:.2f} s "
        f"({written / seconds:,.0f} events/s), peak {peak / 1e6:.1f} MB allocated"
    )


if __name__ == "__main__":
    main()
