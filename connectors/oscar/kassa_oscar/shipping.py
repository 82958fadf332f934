"""The ways an order leaves the connector's store: collected there (click & collect), or
shipped from it."""

from decimal import Decimal

from django.conf import settings
from oscar.apps.shipping import methods
from oscar.apps.shipping.repository import Repository as OscarRepository
from oscar.core import prices

PICKUP = "kassa-pickup"
SHIP = "kassa-ship"


class Pickup(methods.Free):
    code = PICKUP

    @property
    def name(self):
        return "Click & collect at " + settings.KASSA.get("STORE_NAME", settings.KASSA["STORE"])


class ShipFromStore(methods.Base):
    code = SHIP
    is_tax_known = True

    @property
    def name(self):
        return "Shipped from " + settings.KASSA.get("STORE_NAME", settings.KASSA["STORE"])

    def calculate(self, basket):
        fee = Decimal(settings.KASSA.get("SHIPPING_FEE", "4.90"))
        return prices.Price(
            currency=basket.currency, excl_tax=fee, incl_tax=fee, tax=Decimal("0.00")
        )


class Repository(OscarRepository):
    methods = (Pickup(), ShipFromStore())
