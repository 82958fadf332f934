"""Kassa HQ's API as the connector calls it: JSON over HTTP(S) with the shop's API key.

Settings (``KASSA`` in the shop's settings): ``URL`` (HQ), ``API_KEY`` (an API key with the
scopes ``catalog:read``, ``stock:read``, ``reservations:write``, ``orders:read``,
``orders:write``, ``webhooks:write``), ``STORE`` (the store whose stock the shop sells and
where its orders are picked up or shipped from).
"""

import functools
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings


class KassaError(Exception):
    """HQ refused a request: its status, error code, message and the field it names."""

    def __init__(self, status, code, message, field=None):
        super().__init__(f"{status} {code}: {message}" + (f" ({field})" if field else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def setting(name):
    return settings.KASSA[name]


@functools.lru_cache(maxsize=1)
def tls_context(ca_file):
    """The TLS context HQ is reached with: its chain's CA alone when one is configured."""
    return ssl.create_default_context(cafile=ca_file)


def call(method, path, body=None, idempotency_key=None, query=None, timeout=15):
    """Sends one request; answers the JSON body. Raises ``KassaError`` for an error answer and
    ``OSError`` when HQ cannot be reached."""
    url = setting("URL").rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", "Bearer " + setting("API_KEY"))
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if idempotency_key:
        request.add_header("Idempotency-Key", idempotency_key)
    try:
        context = tls_context(setting("CA_FILE")) if url.startswith("https://") else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as refused:
        try:
            error = json.loads(refused.read() or b"{}")
        except ValueError:
            error = {}
        raise KassaError(
            refused.code,
            error.get("code", "http_error"),
            error.get("message", refused.reason),
            error.get("field"),
        ) from None
    return json.loads(raw) if raw else None
