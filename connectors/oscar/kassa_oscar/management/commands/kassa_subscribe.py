"""Subscribes the shop to HQ's webhooks (stock, orders and returns) at URL and keeps the secret HQ
answers; ``--rotate`` asks HQ for a new secret, the old one still accepted during the overlap."""

from django.core.management.base import BaseCommand, CommandError

from kassa_oscar import client
from kassa_oscar.models import State

EVENTS = ["availability.changed", "order.*", "return.*"]


class Command(BaseCommand):
    help = "Subscribe the shop to Kassa HQ's webhooks"

    def add_arguments(self, parser):
        parser.add_argument("url", help="this shop's webhook address, …/kassa/webhooks/")
        parser.add_argument("--rotate", action="store_true")

    def handle(self, *args, url, rotate, **options):
        current = State.get("webhook.id")
        try:
            if rotate:
                if not current:
                    raise CommandError("not subscribed yet: run without --rotate first")
                answer = client.call("POST", f"/v1/webhooks/{current}/rotate-secret", {})
                State.put("webhook.previous_secret", State.get("webhook.secret"))
            else:
                if current:
                    client.call("DELETE", f"/v1/webhooks/{current}")
                answer = client.call("POST", "/v1/webhooks", {"url": url, "events": EVENTS})
                State.put("webhook.previous_secret", "")
        except client.KassaError as refused:
            raise CommandError(str(refused)) from None
        State.put("webhook.id", answer["id"])
        State.put("webhook.secret", answer["secret"])
        self.stdout.write(f"subscribed {answer['id']} to {', '.join(EVENTS)} at {url}")
