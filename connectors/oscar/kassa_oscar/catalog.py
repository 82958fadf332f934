"""HQ's catalog in the shop: every variant sold online becomes an Oscar product (its SKU the
UPC), priced from HQ's price books as the connector's store would price it."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from oscar.core.loading import get_model

from . import client
from .models import PriceBook, State

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
Category = get_model("catalogue", "Category")
ProductCategory = get_model("catalogue", "ProductCategory")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")

CURSOR = "catalog.after"


def partner():
    found, _ = Partner.objects.get_or_create(code="kassa", defaults={"name": "Kassa"})
    return found


def product_class():
    found, _ = ProductClass.objects.get_or_create(
        slug="kassa", defaults={"name": "Kassa", "requires_shipping": True, "track_stock": True}
    )
    return found


def sellable(variant):
    """Sold here: online (not store-only), by the piece, at a fixed price."""
    v = variant["variant"]
    return v["channels"] in ("all", "online") and v["unit"] == "each" and not v.get("open_price")


def _instant(text):
    return datetime.datetime.fromisoformat(text) if text else None


def price(sku, store, now=None):
    """The price in force for ``sku`` at ``store`` in the shop's currency
    (``OSCAR_DEFAULT_CURRENCY``): the store's own book wins over the chain's; of a scope's books
    the newest version. ``(amount, currency)`` or ``None``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    books = list(PriceBook.objects.filter(sku=sku, currency=settings.OSCAR_DEFAULT_CURRENCY))
    for scope in (store, ""):
        ranked = sorted((b for b in books if b.store == scope), key=lambda b: -b.version)
        for book in ranked[:1]:
            for entry in book.entries:
                start, end = _instant(entry.get("from")), _instant(entry.get("to"))
                if (start is None or start <= now) and (end is None or now < end):
                    return Decimal(entry["price"]), book.currency
    return None


def reprice(skus, store, now=None):
    for record in StockRecord.objects.filter(partner_sku__in=skus):
        priced = price(record.partner_sku, store, now)
        if priced is None:
            record.price = None
        else:
            record.price, record.price_currency = priced
        record.save(update_fields=["price", "price_currency"])


def reprice_due(now=None):
    """Reprices the SKUs whose price changed since the last call without a new change from HQ
    (a price scheduled ahead that has now come into force, or one that ended)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    since = _instant(State.get("catalog.priced_at")) or now
    due = set()
    for book in PriceBook.objects.all().only("sku", "entries"):
        for entry in book.entries:
            for edge in (_instant(entry.get("from")), _instant(entry.get("to"))):
                if edge is not None and since < edge <= now:
                    due.add(book.sku)
    if due:
        reprice(due, client.setting("STORE"), now)
    State.put("catalog.priced_at", now.isoformat())
    return due


def _category(key, payload):
    existing = Category.objects.filter(slug=key).first()
    if payload is None:
        return
    if existing:
        existing.name = payload["name"]
        existing.save()
        return
    parent = Category.objects.filter(slug=payload.get("parent") or "").first()
    node = parent.add_child(name=payload["name"], slug=key) if parent else Category.add_root(
        name=payload["name"], slug=key
    )
    return node


def _variant(sku, payload):
    product = Product.objects.filter(upc=sku).first()
    if payload is None or not sellable(payload):
        if product:
            product.is_public = False
            product.save(update_fields=["is_public"])
        return
    if product is None:
        product = Product(upc=sku, structure=Product.STANDALONE, product_class=product_class())
    product.title = payload["variant"]["name"]
    product.is_public = True
    product.save()
    StockRecord.objects.get_or_create(
        product=product,
        partner=partner(),
        defaults={
            "partner_sku": sku,
            "num_in_stock": 0,
            "price_currency": settings.OSCAR_DEFAULT_CURRENCY,
        },
    )
    category = Category.objects.filter(slug=payload.get("category") or "").first()
    if category:
        ProductCategory.objects.get_or_create(product=product, category=category)


def _prices(key, payload):
    if payload is None:
        sku = PriceBook.objects.filter(key=key).values_list("sku", flat=True).first()
        PriceBook.objects.filter(key=key).delete()
        return sku
    scope = payload["scope"]
    PriceBook.objects.update_or_create(
        key=key,
        defaults={
            "sku": payload["sku"],
            "book": payload["book"],
            "version": payload["version"],
            "store": scope.get("store", "") if isinstance(scope, dict) else "",
            "currency": payload["currency"],
            "entries": payload["entries"],
        },
    )
    return payload["sku"]


def pull(limit=500):
    """Reads the catalog changes after the remembered cursor, page by page, and applies them.
    Answers the SKUs whose product or price changed."""
    store = client.setting("STORE")
    changed = set()
    while True:
        page = client.call(
            "GET", "/v1/catalog/changes", query={"after": State.get(CURSOR), "limit": limit}
        )
        with transaction.atomic():
            touched = set()
            # Categories first, so that a variant finds its category in the same page.
            for change in sorted(page["changes"], key=lambda c: c["kind"] != "category"):
                kind, key, payload = change["kind"], change["key"], change["payload"]
                if kind == "category":
                    _category(key, payload)
                elif kind == "variant":
                    _variant(key, payload)
                    touched.add(key)
                elif kind == "prices":
                    sku = _prices(key, payload)
                    if sku:
                        touched.add(sku)
            reprice(touched, store)
            State.put(CURSOR, page["next"])
        changed |= touched
        if not page["more"]:
            return changed
