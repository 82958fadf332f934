from django.db import models


class State(models.Model):
    """What the connector remembers between runs: feed cursors, the webhook subscription and
    its secret."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.TextField(blank=True, default="")

    @classmethod
    def get(cls, key, default=""):
        row = cls.objects.filter(key=key).first()
        return row.value if row else default

    @classmethod
    def put(cls, key, value):
        cls.objects.update_or_create(key=key, defaults={"value": value})


class PriceBook(models.Model):
    """One SKU's entries in one of HQ's price books, as the catalog feed gave them."""

    key = models.CharField(max_length=200, primary_key=True)
    sku = models.CharField(max_length=64, db_index=True)
    book = models.CharField(max_length=64)
    version = models.BigIntegerField()
    store = models.CharField(max_length=64, blank=True, default="")
    currency = models.CharField(max_length=3)
    entries = models.JSONField(default=list)


class OrderLink(models.Model):
    """An Oscar order and what Kassa knows of it."""

    order = models.OneToOneField("order.Order", on_delete=models.CASCADE, related_name="kassa")
    reservation = models.CharField(max_length=64, blank=True, default="")
    kassa_id = models.CharField(max_length=64, blank=True, default="")
    kassa_number = models.CharField(max_length=32, blank=True, default="", db_index=True)
    status = models.CharField(max_length=32, blank=True, default="")
    sequence = models.BigIntegerField(default=0)
    refund_due = models.CharField(max_length=32, blank=True, default="")
    error = models.TextField(blank=True, default="")


class InStoreReturn(models.Model):
    """A sale made in one of the chain's stores that the customer returned through this shop,
    and what Kassa knows of it: open until the parcel reaches the store, then received. The
    shop refunds ``refund_due`` (the returned lines' share of what the till charged)."""

    number = models.CharField(max_length=32, primary_key=True)
    kassa_id = models.CharField(max_length=64)
    receipt = models.CharField(max_length=100, db_index=True)
    receive_at = models.CharField(max_length=64)
    status = models.CharField(max_length=32)
    refund_due = models.CharField(max_length=32, blank=True, default="")
    lines = models.JSONField(default=list)
    reference = models.CharField(max_length=200, blank=True, default="")
    sequence = models.BigIntegerField(default=0)


class ReceivedEvent(models.Model):
    """A webhook event already applied (a retry carries the same id)."""

    id = models.CharField(max_length=64, primary_key=True)
    type = models.CharField(max_length=64)
    received = models.DateTimeField(auto_now_add=True)
