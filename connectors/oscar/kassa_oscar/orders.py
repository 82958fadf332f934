"""Orders between the shop and HQ: the hold taken before an order is placed, the order handed to
HQ once placed (which routes it to the store), and every step the store takes told back."""

import logging
from decimal import Decimal

from django.db import transaction

from . import client
from .models import OrderLink
from .shipping import PICKUP

log = logging.getLogger(__name__)

#: HQ's order status → the Oscar status the connector shows.
STATUSES = {
    "placed": "Held at store",
    "picked": "Picked",
    "ready": "Ready for pickup",
    "shipped": "Shipped",
    "collected": "Collected",
    "cancelled": "Cancelled",
}


def basket_lines(basket):
    return [
        {"sku": line.stockrecord.partner_sku, "quantity": str(line.quantity)}
        for line in basket.all_lines()
    ]


def hold(basket, order_number):
    """Holds the basket at the store for 15 minutes (the cart hold HQ converts into the order).
    Raises ``KassaError`` (409 ``insufficient_stock`` when the store cannot promise a line)."""
    answer = client.call(
        "POST",
        "/v1/reservations",
        {
            "location": client.setting("STORE"),
            "lines": basket_lines(basket),
            "ttl_seconds": 900,
            "reference": str(order_number),
            "channel": "online",
        },
        idempotency_key=f"oscar-hold-{order_number}",
    )
    return answer["id"]


def _payment(order):
    source = order.sources.exclude(reference="").first()
    if source:
        return {"state": "paid", "psp_reference": source.reference}
    return {"state": "at-pickup"}


def _request(order, link):
    address = order.shipping_address
    name = address.name if address and address.name else order.email
    pickup = order.shipping_code == PICKUP
    body = {
        "store": client.setting("STORE"),
        "fulfilment": "pickup" if pickup else "ship-from-store",
        "payment": _payment(order),
        "customer": {"name": name, "email": order.email},
        "lines": [
            {
                "sku": line.partner_sku,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price_incl_tax),
            }
            for line in order.lines.all()
        ],
        "reference": str(order.number),
    }
    if link.reservation:
        body["reservation"] = link.reservation
    if address and not pickup:
        body["shipping_address"] = ", ".join(address.active_address_fields())
    return body


def send(order):
    """Hands ``order`` to HQ (idempotent under the order's number); on success the order is held
    at the store. A refusal puts the order in ``Stock conflict`` or ``Not sent to Kassa``
    with HQ's reason as a note; HQ out of reach leaves it to ``kassa_sync`` to try again."""
    link, _ = OrderLink.objects.get_or_create(order=order)
    try:
        answer = client.call(
            "POST", "/v1/orders", _request(order, link), idempotency_key=f"oscar-{order.number}"
        )
    except client.KassaError as refused:
        link.error = str(refused)
        link.save()
        status = "Stock conflict" if refused.code == "insufficient_stock" else "Not sent to Kassa"
        _move(order, status, f"Kassa refused the order: {refused.message}")
        return False
    except OSError as unreachable:
        link.error = f"HQ out of reach: {unreachable}"
        link.save()
        log.warning("order %s: %s", order.number, link.error)
        return False
    link.kassa_id = answer["id"]
    link.kassa_number = answer["number"]
    link.error = ""
    link.save()
    _move(order, "Held at store", f"Kassa order {answer['number']} at {answer['store']}")
    return True


def send_pending():
    """Hands to HQ the orders it has not taken yet (HQ was out of reach)."""
    sent = 0
    for link in OrderLink.objects.filter(kassa_id="", error__startswith="HQ out of reach"):
        sent += send(link.order)
    return sent


def _move(order, status, note=None):
    if order.status != status:
        order.set_status(status)
    if note:
        order.notes.create(note_type="System", message=note)


def on_event(event):
    """An ``order.*`` event: moves the Oscar order to HQ's status, in the order HQ numbered the
    events (an older one is ignored), with a note of what the store did."""
    data = event["data"]
    with transaction.atomic():
        link = (
            OrderLink.objects.select_for_update()
            .filter(order__number=data.get("reference") or "")
            .first()
        )
        if link is None or event["sequence"] <= link.sequence:
            return
        link.sequence = event["sequence"]
        link.kassa_id = data["id"]
        link.kassa_number = data["number"]
        link.status = data["status"]
        kind = event["type"]
        note = None
        status = STATUSES.get(data["status"], link.order.status)
        if kind == "order.picked" and data.get("short"):
            picked = ", ".join(
                f"{l['sku']} {l.get('picked', '0')} of {l['quantity']}" for l in data["lines"]
            )
            note = f"Picked short at the store: {picked}"
        elif kind == "order.shipped":
            note = f"Shipped by {data.get('carrier')}, tracking {data.get('tracking')}"
        elif kind == "order.stock_conflict":
            status = "Stock conflict"
            note = "The store sold units this order holds; it cannot be filled in full"
        elif kind == "order.returned":
            status = "Returned"
            link.refund_due = data.get("refund_due", "")
            back = ", ".join(
                f"{l['sku']} {l['returned']}" for l in data["lines"] if l.get("returned")
            )
            note = f"Brought back to the store: {back}; refund due {data.get('refund_due')}"
            credit = data.get("store_credit") or "0"
            if Decimal(credit) > 0:
                note += f" (the customer took {credit} as store credit at the store)"
        link.save()
        _move(link.order, status, note)
