"""Returns goods bought in one of the chain's stores through the shop: ``kassa_return RECEIPT
SKU=QUANTITY …`` asks HQ, prints the return's number and the refund the shop owes, and keeps it
(``InStoreReturn``); the parcel goes to the selling store unless ``--receive-at`` names another."""

import json

from django.core.management.base import BaseCommand, CommandError

from kassa_oscar import client, returns


class Command(BaseCommand):
    help = "Return goods of an in-store sale through the shop, by the receipt number"

    def add_arguments(self, parser):
        parser.add_argument("receipt", help="the receipt number printed on the till's receipt")
        parser.add_argument("lines", nargs="+", help="SKU=QUANTITY, one per line returned")
        parser.add_argument("--receive-at", help="the store the parcel is sent to")
        parser.add_argument("--reason")
        parser.add_argument("--reference", help="the shop's id of the return (sent once)")

    def handle(self, *args, receipt, lines, receive_at, reason, reference, **options):
        asked = []
        for line in lines:
            sku, sep, quantity = line.partition("=")
            if not sep or not sku or not quantity:
                raise CommandError(f"`{line}`: write a line as SKU=QUANTITY")
            asked.append((sku, quantity))
        try:
            row = returns.create(receipt, asked, receive_at, reason, reference)
        except client.KassaError as refused:
            raise CommandError(str(refused)) from None
        except OSError as unreachable:
            raise CommandError(f"Kassa HQ cannot be reached: {unreachable}") from None
        self.stdout.write(
            json.dumps({"number": row.number, "status": row.status, "refund_due": row.refund_due})
        )
