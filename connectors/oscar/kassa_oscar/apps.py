from django.apps import AppConfig


class KassaConfig(AppConfig):
    name = "kassa_oscar"
    label = "kassa"
    verbose_name = "Kassa"
    default_auto_field = "django.db.models.AutoField"
