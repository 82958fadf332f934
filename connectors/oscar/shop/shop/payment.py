"""The example shop's payment step: the connector's (which holds the stock at the store first)
with a demonstration payment service that records a payment reference and moves no money. A real
shop puts its payment provider's plugin here; whatever it records as Oscar's payment ``Source``
with a reference is what the connector tells HQ (``paid`` with ``psp_reference``)."""

from oscar.apps.payment.models import Source, SourceType

from kassa_oscar.checkout import PaymentDetailsView as KassaPaymentDetailsView


class PaymentDetailsView(KassaPaymentDetailsView):
    def handle_payment(self, order_number, total, **kwargs):
        super().handle_payment(order_number, total, **kwargs)
        kind, _ = SourceType.objects.get_or_create(name="Demo payment (no money moves)")
        reference = f"demo-{order_number}"
        self.add_payment_source(
            Source(source_type=kind, amount_allocated=total.incl_tax, reference=reference)
        )
        self.add_payment_event("Settled", total.incl_tax, reference=reference)
