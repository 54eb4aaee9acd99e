"""The benchmark table's harness runs end to end (``python -m benchmarks.table``), at a size too
small to mean anything, so it cannot rot unnoticed. No timing is asserted: speed targets are
numbers the benchmark prints, not test outcomes."""

from __future__ import annotations

from benchmarks.table import SCALES, run
from tests import pg_server
from tests.conftest import backend_under_test


def test_every_measurement_of_the_table_runs() -> None:
    backend = backend_under_test()
    server = pg_server.server_url() if backend == "postgres" else ""
    table = run([backend], SCALES["tiny"], postgres_url=server)

    cells = {row.metric: row.cells[backend] for row in table.rows.values()}
    failed = {metric: cell for metric, cell in cells.items() if "error" in cell}
    assert failed == {}
    expected = [
        "callback ack at 50 req/s, empty database",
        "6-text drain into one channel (Slack 50 msg/s)",
        "preflight, 20 customers",
        "audience sync, 20 customers",
        "blast step ack at 20 customers: /sms-blast",
        "blast step ack at 20 customers: keystroke",
        "blast step ack at 20 customers: compose submit",
        "blast step ack at 20 customers: confirm submit",
        "blast throughput, 3 stores × 1, CRM Text 0 ms/call, 1 worker",
        "blast throughput, 3 stores × 1, CRM Text 0 ms/call, 3 workers",
        "start-up with 100 jobs waiting (process start to first answer)",
        "callback ack at 50 req/s, 100 jobs waiting",
        "/healthz, 100 jobs waiting",
        "callback ack at 50 req/s, 200 messages, 50 customers and threads, a blast to all",
        "staff reply during a 4-text drain (Slack 50 msg/s, 0 ms/call)",
        "posting across 3 channels ÷ 3 msg/s (2 texts each, 0 ms/call)",
    ]
    assert list(cells) == expected
    # every callback answered 200, every text of the drain shown once and in order
    assert "not 200" not in " ".join(cells.values())
    assert "in order: yes, lost 0, doubled 0" in cells[expected[1]]
    assert "(3 texts in" in cells[expected[8]]
    assert "(6 posts in" in cells[expected[-1]]
    markdown = table.markdown([backend])
    assert markdown.splitlines()[0] == (
        f"| metric | {'PostgreSQL' if backend == 'postgres' else 'SQLite'} | target |"
    )
    assert len(markdown.splitlines()) == 2 + len(expected)
