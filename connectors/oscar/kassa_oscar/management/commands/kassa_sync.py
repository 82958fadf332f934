"""Brings the shop in step with Kassa HQ: the catalog changes since the last run, the stock of
what changed (and all of it with ``--all-stock``), and the orders HQ could not take yet. With
``--follow SECONDS`` it goes on, once every SECONDS, until stopped."""

import time

from django.core.management.base import BaseCommand

from kassa_oscar import catalog, client, orders, stock


class Command(BaseCommand):
    help = "Pull HQ's catalog and stock into the shop and send the orders HQ has not taken yet"

    def add_arguments(self, parser):
        parser.add_argument("--follow", type=float, metavar="SECONDS", default=0)
        parser.add_argument("--all-stock", action="store_true")

    def handle(self, *args, follow, all_stock, **options):
        first = True
        while True:
            try:
                changed = catalog.pull() | catalog.reprice_due()
                if all_stock or first:
                    stock.refresh_all()
                elif changed:
                    stock.refresh(changed)
                stock.follow_feed()
                sent = orders.send_pending()
                if changed or sent:
                    self.stdout.write(f"{len(changed)} products changed, {sent} orders sent")
                first = False
            except (client.KassaError, OSError) as failed:
                if not follow:
                    raise
                self.stderr.write(f"kassa_sync: {failed}")
            if not follow:
                return
            time.sleep(follow)
