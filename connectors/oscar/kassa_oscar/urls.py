from django.urls import path

from . import webhooks

urlpatterns = [path("webhooks/", webhooks.receive, name="kassa-webhooks")]
