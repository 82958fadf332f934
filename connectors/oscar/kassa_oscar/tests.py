"""The connector's own rules, without HQ: signatures as HQ documents them, the price a store
charges, quantities as whole units, a return's events applied in HQ's order. (The end-to-end test with HQ, a store and its till is
crates/kassa/tests/web_shop.rs.)"""

import datetime
import hashlib
import hmac
from decimal import Decimal

from django.test import TestCase, override_settings

from . import catalog, returns, stock, webhooks
from .models import InStoreReturn, PriceBook


def sign(secret, t, body):
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


class Signatures(TestCase):
    body = b'{"id":"e1","type":"order.ready"}'

    def test_a_signature_under_the_secret_within_the_window_is_accepted(self):
        header = f"t=1000,v1={sign('s1', 1000, self.body)}"
        self.assertTrue(webhooks.verify(header, self.body, ["s1"], now=1000 + 299))

    def test_during_a_rotation_either_secret_is_accepted(self):
        header = f"t=1000,v1={sign('new', 1000, self.body)},v1={sign('old', 1000, self.body)}"
        self.assertTrue(webhooks.verify(header, self.body, ["", "old"], now=1000))
        self.assertTrue(webhooks.verify(header, self.body, ["new", ""], now=1000))

    def test_a_changed_body_a_stale_time_or_another_secret_is_refused(self):
        header = f"t=1000,v1={sign('s1', 1000, self.body)}"
        self.assertFalse(webhooks.verify(header, self.body + b" ", ["s1"], now=1000))
        self.assertFalse(webhooks.verify(header, self.body, ["s1"], now=1000 + 301))
        self.assertFalse(webhooks.verify(header, self.body, ["s2"], now=1000))
        self.assertFalse(webhooks.verify("v1=00", self.body, ["s1"], now=1000))
        self.assertFalse(webhooks.verify("", self.body, [""], now=1000))


@override_settings(OSCAR_DEFAULT_CURRENCY="EUR")
class Prices(TestCase):
    now = datetime.datetime(2026, 12, 5, 12, tzinfo=datetime.timezone.utc)

    def book(self, key, store, currency, version, *entries):
        PriceBook.objects.create(
            key=key, sku="GRO-BRD-0012", book=key, version=version, store=store,
            currency=currency, entries=list(entries),
        )

    def test_the_stores_own_book_wins_and_another_currency_is_never_read(self):
        self.book("chain-chf", "", "CHF", 9, {"price": "3.65", "from": None, "to": None})
        self.assertIsNone(catalog.price("GRO-BRD-0012", "vienna-01", self.now))
        self.book("chain-eur", "", "EUR", 1, {"price": "3.49", "from": "2026-01-01T00:00:00Z", "to": None})
        self.assertEqual(catalog.price("GRO-BRD-0012", "vienna-01", self.now), (Decimal("3.49"), "EUR"))
        self.book("vienna", "vienna-01", "EUR", 1, {"price": "3.29", "from": None, "to": None})
        self.assertEqual(catalog.price("GRO-BRD-0012", "vienna-01", self.now), (Decimal("3.29"), "EUR"))
        self.assertEqual(catalog.price("GRO-BRD-0012", "graz-01", self.now), (Decimal("3.49"), "EUR"))

    def test_a_price_is_in_force_from_its_start_until_its_end(self):
        self.book(
            "chain-eur", "", "EUR", 2,
            {"price": "3.49", "from": None, "to": "2026-12-06T00:00:00Z"},
            {"price": "3.99", "from": "2026-12-06T00:00:00Z", "to": None},
        )
        self.assertEqual(catalog.price("GRO-BRD-0012", "vienna-01", self.now)[0], Decimal("3.49"))
        later = self.now + datetime.timedelta(days=1)
        self.assertEqual(catalog.price("GRO-BRD-0012", "vienna-01", later)[0], Decimal("3.99"))


class Quantities(TestCase):
    def test_a_figure_is_whole_units_never_below_nothing(self):
        self.assertEqual(stock.units("2"), 2)
        self.assertEqual(stock.units("2.5"), 2)
        self.assertEqual(stock.units("0"), 0)
        self.assertEqual(stock.units("-1"), 0)


class InStoreReturns(TestCase):
    def event(self, sequence, status, refund="6.66"):
        return {
            "sequence": sequence,
            "data": {
                "id": "id-1", "number": "R-000001", "receipt": "vienna-01-t1-000001",
                "sale_store": "vienna-01", "receive_at": "vienna-01", "status": status,
                "refund_due": refund, "reference": "rma-7",
                "lines": [{"line": 0, "sku": "GRO-BRD-0012", "name": "Bread", "quantity": "2"}],
            },
        }

    def test_a_return_follows_hqs_sequence_and_an_older_event_changes_nothing(self):
        returns.on_event(self.event(1, "open"))
        returns.on_event(self.event(2, "received"))
        returns.on_event(self.event(1, "open"))
        row = InStoreReturn.objects.get(number="R-000001")
        self.assertEqual((row.status, row.refund_due, row.sequence), ("received", "6.66", 2))
        self.assertEqual(row.lines[0]["quantity"], "2")
