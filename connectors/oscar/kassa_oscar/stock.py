"""The shop's stock is what HQ says the connector's store can promise: ``available`` (on hand
less reserved less safety stock), refreshed from ``availability.changed`` webhooks, from the
availability change feed, and in full now and then."""

from decimal import Decimal

from oscar.core.loading import get_model

from . import client
from .models import State

StockRecord = get_model("partner", "StockRecord")

CURSOR = "availability.after"


def units(text):
    """A decimal quantity as whole units the shop can sell (``2.5`` → 2)."""
    return max(int(Decimal(text)), 0)


def set_available(sku, available):
    StockRecord.objects.filter(partner_sku=sku, partner__code="kassa").update(
        num_in_stock=units(available), num_allocated=0
    )


def refresh(skus):
    """Asks HQ for the figures of ``skus`` at the store, 200 at a time."""
    store = client.setting("STORE")
    skus = sorted(skus)
    for start in range(0, len(skus), 200):
        chunk = skus[start : start + 200]
        answer = client.call(
            "GET", "/v1/availability", query={"skus": ",".join(chunk), "location": store}
        )
        for variant in answer["variants"]:
            figures = next(
                (l for l in variant.get("locations", []) if l.get("location") == store), None
            )
            set_available(variant["sku"], figures["available"] if figures else "0")


def refresh_all():
    refresh(
        StockRecord.objects.filter(partner__code="kassa").values_list("partner_sku", flat=True)
    )


def follow_feed():
    """Reads the availability change feed after the remembered cursor and refreshes the store's
    SKUs it names: what a webhook missed while the shop was down."""
    store = client.setting("STORE")
    while True:
        after = int(State.get(CURSOR, "0") or 0)
        page = client.call("GET", "/v1/availability/changes", query={"after": after, "limit": 500})
        skus = {c["sku"] for c in page["changes"] if c["location"] == store}
        if skus:
            refresh(skus)
        State.put(CURSOR, str(page["next"]))
        if not page["changes"] or page["next"] == after:
            return


def on_event(data):
    """An ``availability.changed`` event: the figures of one SKU at one store."""
    if data.get("location") == client.setting("STORE"):
        set_available(data["sku"], data["available"])
