"""Kassa for django-oscar: the web shop as another channel on the chain's one stock.

The connector keeps the shop's catalog, prices and stock in step with Kassa HQ, holds stock at
the chosen store before an order is placed, hands the order to HQ (which routes it to the
store's tills) and follows the order through HQ's webhooks: picked, ready, collected, shipped,
returned at a till. See the README of this folder.
"""

#: The order statuses the connector moves an order through, as Oscar's
#: ``OSCAR_ORDER_STATUS_PIPELINE`` (a shop adds its own next to them).
ORDER_STATUSES = (
    "Pending",
    "Held at store",
    "Picked",
    "Ready for pickup",
    "Shipped",
    "Collected",
    "Returned",
    "Stock conflict",
    "Cancelled",
    "Not sent to Kassa",
)
ORDER_STATUS_PIPELINE = {s: ORDER_STATUSES for s in ORDER_STATUSES}
