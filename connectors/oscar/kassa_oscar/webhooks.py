"""HQ's webhooks into the shop: each request's signature and time checked, each event applied
once (a retry carries the same id), in the order HQ numbered each resource's events."""

import hashlib
import hmac
import json
import time

from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import orders, returns, stock
from .models import ReceivedEvent, State

#: How far the signed time may be from this clock (HQ's documented replay window).
REPLAY_WINDOW_S = 300


def verify(header, body, secrets, now=None):
    """``t=<unix seconds>,v1=<hex>[,v1=<hex>]`` over ``<t>.<body>``: true when one signature
    matches one of ``secrets`` and ``t`` is within the replay window."""
    now = time.time() if now is None else now
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    if abs(now - int(stamps[0])) > REPLAY_WINDOW_S:
        return False
    signed = stamps[0].strip().encode() + b"." + body
    for secret in filter(None, secrets):
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, s) for s in signatures):
            return True
    return False


@csrf_exempt
@require_POST
def receive(request):
    body = request.body
    secrets = [State.get("webhook.secret"), State.get("webhook.previous_secret")]
    if not verify(request.headers.get("Kassa-Webhook-Signature", ""), body, secrets):
        return HttpResponse("bad signature", status=401)
    try:
        event = json.loads(body)
        event_id, kind = event["id"], event["type"]
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("not an event")
    try:
        with transaction.atomic():
            ReceivedEvent.objects.create(id=event_id, type=kind)
            if kind == "availability.changed":
                stock.on_event(event["data"])
            elif kind.startswith("order."):
                orders.on_event(event)
            elif kind.startswith("return."):
                returns.on_event(event)
    except IntegrityError:
        pass  # seen before: applied once already
    return HttpResponse(status=204)
