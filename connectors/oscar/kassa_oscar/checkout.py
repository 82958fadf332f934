"""Oscar's checkout with the store's stock held before the order is placed: a basket the store
cannot promise is refused at payment, with what it can promise, and nothing is placed."""

from oscar.apps.checkout.views import PaymentDetailsView as OscarPaymentDetailsView
from oscar.apps.payment.exceptions import PaymentError, UnableToTakePayment

from . import client, orders
from .models import OrderLink


class PaymentDetailsView(OscarPaymentDetailsView):
    kassa_reservation = ""

    def handle_payment(self, order_number, total, **kwargs):
        try:
            self.kassa_reservation = orders.hold(self.request.basket, order_number)
        except client.KassaError as refused:
            if refused.status == 409:
                raise UnableToTakePayment(refused.message) from None
            raise PaymentError(str(refused)) from None
        except OSError as unreachable:
            raise PaymentError(f"Kassa HQ out of reach: {unreachable}") from None
        super().handle_payment(order_number, total, **kwargs)

    def handle_successful_order(self, order):
        OrderLink.objects.update_or_create(
            order=order, defaults={"reservation": self.kassa_reservation}
        )
        orders.send(order)
        return super().handle_successful_order(order)
