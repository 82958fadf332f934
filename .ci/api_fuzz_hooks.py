"""Schemathesis hooks for .ci/api-fuzz: how generated request bodies go on the wire."""

import schemathesis

# A push body is bytes (a zstd-compressed batch). Send what schemathesis generates for it as raw
# bytes, as it does for application/octet-stream: HQ must refuse any such body with a
# documented answer (mostly a parked `batch_rejected`), never a 5xx.
schemathesis.serializer.alias("application/vnd.kassa.batch+zstd", "application/octet-stream")


# A reference pull with `wait` is held until HQ's next change or the wait passes (up to 25 s):
# fuzz its value, but wait at most a second, so that the step stays within minutes.
@schemathesis.hook
def map_query(ctx, query):
    if query and isinstance(query.get("wait"), int) and query["wait"] > 1:
        query["wait"] = 1
    return query

# A price list is CSV text: send what schemathesis generates for it as plain text.
schemathesis.serializer.alias("text/csv", "text/plain")
