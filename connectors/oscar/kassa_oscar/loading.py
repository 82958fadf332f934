"""Oscar's class loader with the connector's classes in place of two of Oscar's: the shipping
methods (collect at or ship from the store) and the payment step (which holds the stock).
Set ``OSCAR_DYNAMIC_CLASS_LOADER = "kassa_oscar.loading.class_loader"``; a shop whose payment
step takes the money names its own view, derived from ``kassa_oscar.checkout``'s, as
``KASSA["PAYMENT_VIEW"]`` (``"module.ClassName"``)."""

from django.conf import settings
from django.utils.module_loading import import_string
from oscar.core.loading import default_class_loader


def _overrides():
    return {
        ("shipping.repository", "Repository"): "kassa_oscar.shipping.Repository",
        ("checkout.views", "PaymentDetailsView"): settings.KASSA.get("PAYMENT_VIEW")
        or "kassa_oscar.checkout.PaymentDetailsView",
    }


def class_loader(module_label, classnames, module_prefix):
    classes = default_class_loader(module_label, classnames, module_prefix)
    overrides = _overrides()
    return [
        import_string(overrides[(module_label, name)]) if (module_label, name) in overrides else found
        for name, found in zip(classnames, classes)
    ]
