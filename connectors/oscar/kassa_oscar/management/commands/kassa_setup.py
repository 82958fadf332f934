"""Readies a new shop for Kassa's orders: the countries it ships to (ISO codes) and the site's
address."""

from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand
from oscar.core.loading import get_model

Country = get_model("address", "Country")

NAMES = {"AT": "Austria", "CH": "Switzerland", "DE": "Germany"}


class Command(BaseCommand):
    help = "Set up the countries the shop ships to and its domain"

    def add_arguments(self, parser):
        parser.add_argument("--country", action="append", default=[], metavar="ISO")
        parser.add_argument("--domain", default="127.0.0.1:8000")

    def handle(self, *args, country, domain, **options):
        for code in country or ["AT"]:
            code = code.upper()
            Country.objects.update_or_create(
                iso_3166_1_a2=code,
                defaults={
                    "name": NAMES.get(code, code),
                    "printable_name": NAMES.get(code, code),
                    "is_shipping_country": True,
                },
            )
        Site.objects.update_or_create(id=1, defaults={"domain": domain, "name": "shop"})
