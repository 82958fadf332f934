"""Returns through the shop of what was bought in one of the chain's stores.

A customer sends back goods bought at a till, with the receipt's number. ``create`` asks HQ
(``POST /v1/returns``), which checks the lines against what the sale sold less what came back
before — at a till or through the web — and answers the refund the shop owes: the returned
lines' share of what the till charged. The parcel goes to the store (the selling store, or
``receive_at``); when a till there receives it, the ``return.received`` webhook says so.
"""

from django.db import transaction

from . import client
from .models import InStoreReturn


def _keep(data, sequence=0):
    row, _ = InStoreReturn.objects.get_or_create(
        number=data["number"],
        defaults={"kassa_id": data["id"], "receipt": data["receipt"], "status": data["status"]},
    )
    if sequence and sequence <= row.sequence:
        return row
    row.kassa_id = data["id"]
    row.receipt = data["receipt"]
    row.receive_at = data["receive_at"]
    row.status = data["status"]
    row.refund_due = data.get("refund_due") or ""
    row.lines = data["lines"]
    row.reference = data.get("reference") or ""
    row.sequence = max(row.sequence, sequence)
    row.save()
    return row


def create(receipt, lines, receive_at=None, reason=None, reference=None):
    """Returns ``lines`` (``[(sku, quantity), …]``, quantities as decimal strings) of the sale
    with receipt number ``receipt``; answers the ``InStoreReturn`` with the refund due. The same
    ``reference`` again is answered with the first return (HQ's idempotency). Raises
    ``client.KassaError`` naming the field HQ refused."""
    body = {"receipt": receipt, "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    if receive_at:
        body["receive_at"] = receive_at
    if reason:
        body["reason"] = reason
    if reference:
        body["reference"] = reference
    key = f"return-{reference}" if reference else None
    answer = client.call("POST", "/v1/returns", body, idempotency_key=key)
    return _keep(answer)


def on_event(event):
    """A ``return.*`` event: the return's latest state, applied in HQ's sequence."""
    with transaction.atomic():
        _keep(event["data"], event["sequence"])
