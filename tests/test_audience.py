"""The audience sync streams CRM Text's pages: each page is stored before the next is asked."""

from __future__ import annotations

from typing import Any

from bridge import audience
from bridge.crmtext import CrmTextClient, Customer
from bridge.storage import OPTED_IN, OPTED_OUT
from tests.conftest import Harness


class Watching(CrmTextClient):
    """The real client; notes how many customers were stored when each page was asked for."""

    def __init__(self, real: CrmTextClient, harness: Harness) -> None:
        self.__dict__.update(real.__dict__)
        self.harness = harness
        self.stored_before_page: list[int] = []

    def customers_by_status(self, *args: Any, **kwargs: Any) -> list[Customer]:
        self.stored_before_page.append(len(self.harness.services.storage.customers_of("PIZZA")))
        return super().customers_by_status(*args, **kwargs)


def test_each_page_is_stored_before_the_next_is_fetched(harness: Harness) -> None:
    for n in range(5):
        harness.sim.add_customer("PIZZA", f"415555030{n}", status=OPTED_IN)
    harness.sim.add_customer("PIZZA", "4155550310", status=OPTED_OUT)
    crm = Watching(harness.services.crm, harness)
    changed = audience.sync(harness.services.storage, crm, "PIZZA", harness.clock(), page_size=2)
    assert changed == 6
    # opted in: offsets 0, 2, 4 (short page ends it); pending: one empty page; opted out: one
    assert crm.stored_before_page == [0, 2, 4, 5, 5]
    stored = harness.services.storage.customers_of("PIZZA")
    assert [(c["phone"], c["status"], c["state"]) for c in stored] == [
        *[(f"+1415555030{n}", OPTED_IN, "CA") for n in range(5)],
        ("+14155550310", OPTED_OUT, "CA"),
    ]
    assert harness.services.storage.consent_history(stored[0]["id"])[0]["how"] == (
        "CRM Text customer list"
    )


def test_a_crm_text_that_ignores_the_offset_ends_the_sync(harness: Harness) -> None:
    for n in range(3):
        harness.sim.add_customer("PIZZA", f"415555030{n}", status=OPTED_IN)
    crm = Watching(harness.services.crm, harness)
    real = CrmTextClient.customers_by_status

    def ignoring_offset(self: CrmTextClient, store: str, status: int, offset: int = 0,
                        count: int = 1000) -> list[Customer]:  # fmt: skip
        return real(self, store, status, 0, count)

    crm.customers_by_status = ignoring_offset.__get__(crm)  # type: ignore[method-assign]
    assert audience.sync(harness.services.storage, crm, "PIZZA", harness.clock(), 3) == 3
