//! What every write of HQ's API shares: a JSON body whose errors name the field, the
//! `Idempotency-Key` that makes a retried request safe, and optimistic concurrency on
//! reference entities (the entity's change log version is its `ETag`; a write sends it back in
//! `If-Match` and a stale one is refused with what changed since).

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiResult, Hq};
use crate::extract::{read_body, require_content_type};

/// The largest body of a write.
pub(crate) const WRITE_BODY_BYTES: u64 = 64 * 1024;

/// The header a client names a request with, so that sending it again is answered, not
/// applied again.
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// A write's JSON body as `T`. A body that does not deserialize is a `400 invalid_body` naming
/// the field by its path (`variant.identifiers[1]`), or the field serde names.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<(T, axum::body::Bytes)> {
    json_body_limited(headers, body, WRITE_BODY_BYTES).await
}

/// [`json_body`] of at most `limit` bytes.
pub(crate) async fn json_body_limited<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> ApiResult<(T, axum::body::Bytes)> {
    require_content_type(headers, "application/json")?;
    let bytes = read_body(headers, body, limit).await?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = if path == "." {
            crate::extract::backticked(&message).map(str::to_owned)
        } else {
            Some(path)
        };
        let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message);
        match field {
            Some(field) => error.at(field),
            None => error.at("body"),
        }
    })?;
    Ok((value, bytes))
}

/// A new idempotency key, to be recorded with the answer.
pub(crate) struct Key {
    actor: String,
    key: String,
    hash: String,
}

/// What a request's `Idempotency-Key` says to do: `Ok(None)` without a key and
/// `Ok(Some(key))` for a new one (apply the request and [`remember`] its answer with the
/// change), or `Err(answer)` when the key answered this same request before (send that answer
/// again). `request` names the request (method, path and body); the same key with another
/// request is `409 idempotency_key_reused`.
pub(crate) async fn idempotency(
    hq: &Hq,
    headers: &HeaderMap,
    actor: &str,
    request: &[&[u8]],
) -> ApiResult<Result<Option<Key>, Response>> {
    let Some(raw) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(Ok(None));
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                "an Idempotency-Key is 1 to 255 visible ASCII characters",
            )
            .at(IDEMPOTENCY_HEADER)
        })?;
    let hash = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for part in request {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        hex::encode(h.finalize())
    };
    let held: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE actor = $1 AND key = $2",
    )
    .bind(actor)
    .bind(key)
    .fetch_optional(&hq.db.pool)
    .await?;
    match held {
        None => Ok(Ok(Some(Key {
            actor: actor.to_owned(),
            key: key.to_owned(),
            hash,
        }))),
        Some((held_hash, status, response)) if held_hash == hash => {
            let status = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let body: Value = serde_json::from_str(&response).unwrap_or(Value::Null);
            let mut answer = (status, Json(body)).into_response();
            answer
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(Err(answer))
        }
        Some(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request: use a new key for a new request",
        )
        .at(IDEMPOTENCY_HEADER)),
    }
}

impl Key {
    /// Records the answer to the key inside the change's transaction, so the change and its
    /// answer are kept or lost together. The same request racing on another connection is
    /// refused (`409 idempotency_key_in_flight`) and its transaction must be dropped.
    pub(crate) async fn record(
        &self,
        tx: &mut sqlx::AnyConnection,
        status: StatusCode,
        response: &Value,
        now_ms: i64,
    ) -> ApiResult<()> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (actor, key, request_hash, status, response, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (actor, key) DO NOTHING",
        )
        .bind(&self.actor)
        .bind(&self.key)
        .bind(&self.hash)
        .bind(i64::from(status.as_u16()))
        .bind(response.to_string())
        .bind(now_ms)
        .execute(tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "the same request is being answered: send it again to get its answer",
            )
            .at(IDEMPOTENCY_HEADER));
        }
        Ok(())
    }
}

/// Records the answer when the request had a key.
pub(crate) async fn remember(
    key: &Option<Key>,
    tx: &mut sqlx::AnyConnection,
    status: StatusCode,
    response: &Value,
    now_ms: i64,
) -> ApiResult<()> {
    match key {
        Some(key) => key.record(tx, status, response, now_ms).await,
        None => Ok(()),
    }
}

/// A JSON answer with the entity's version as its `ETag`.
pub(crate) fn tagged(status: StatusCode, body: Value, version: i64) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// The version a write's `If-Match` names: `None` without the header, `Some(None)` for `*`.
pub(crate) fn if_match(headers: &HeaderMap) -> ApiResult<Option<Option<i64>>> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_header",
            "If-Match is the ETag the entity was read with (\"12\") or *",
        )
        .at("if-match")
    };
    let text = raw.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(Some(None));
    }
    let version = text
        .strip_prefix("W/")
        .unwrap_or(text)
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(bad)?;
    Ok(Some(Some(version)))
}

/// An entity as the change log holds it now.
pub(crate) struct Held {
    /// Its version (the `ETag`).
    pub version: i64,
    /// Its payload; `None` once removed.
    pub payload: Option<String>,
}

/// The entity `(kind, key)` as held now, if it ever was.
pub(crate) async fn held(
    conn: &mut sqlx::AnyConnection,
    kind: &str,
    key: &str,
) -> Result<Option<Held>, sqlx::Error> {
    let row: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT version, payload FROM ref_entities WHERE kind = $1 AND key = $2")
            .bind(kind)
            .bind(key)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(version, payload)| Held { version, payload }))
}

/// Checks a write of an entity that is `held` against the request's `If-Match`: an existing
/// entity must be written with the version it was read at (`428` without one, `409 stale`
/// with the entity now and the fields changed since that version when it is older); a new
/// one must not name a version.
pub(crate) async fn check_version(
    conn: &mut sqlx::AnyConnection,
    headers: &HeaderMap,
    kind: &str,
    key: &str,
    held: Option<&Held>,
) -> ApiResult<()> {
    let live = held.filter(|h| h.payload.is_some());
    match (if_match(headers)?, live) {
        (None, None) | (Some(None), Some(_)) => Ok(()),
        (Some(Some(v)), Some(h)) if v == h.version => Ok(()),
        (None, Some(h)) => Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "if_match_required",
            format!(
                "{kind} `{key}` exists: send If-Match with the ETag it was read with (now \"{}\")",
                h.version
            ),
        )
        .at("if-match")),
        (Some(_), None) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale",
            format!("{kind} `{key}` does not exist (any more)"),
        )
        .at("if-match")),
        (Some(Some(read_at)), Some(h)) => {
            let then: Option<Option<String>> = sqlx::query_scalar(
                "SELECT payload FROM ref_revisions WHERE kind = $1 AND key = $2 AND version = $3",
            )
            .bind(kind)
            .bind(key)
            .bind(read_at)
            .fetch_optional(conn)
            .await?;
            let parse = |p: Option<&String>| {
                p.and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .unwrap_or(Value::Null)
            };
            let now = parse(h.payload.as_ref());
            let changed = then.map(|then| {
                let mut fields = Vec::new();
                differences("", &parse(then.as_ref()), &now, &mut fields);
                fields
            });
            let what = match &changed {
                Some(fields) if !fields.is_empty() => format!(": {} changed", fields.join(", ")),
                _ => String::new(),
            };
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "stale",
                format!(
                    "{kind} `{key}` was changed since version {read_at} (now {}){what}; read it again and reapply your change",
                    h.version
                ),
            )
            .at("if-match")
            .with("version", json!(h.version))
            .with("current", now)
            .with("changed", json!(changed)))
        }
    }
}

/// The paths (`variant.name`, `variant.identifiers`) at which `a` and `b` differ; arrays are
/// compared whole.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut names: Vec<&String> = x.keys().chain(y.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let inner = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                differences(
                    &inner,
                    x.get(name).unwrap_or(&Value::Null),
                    y.get(name).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(if path.is_empty() {
            ".".into()
        } else {
            path.into()
        }),
        _ => {}
    }
}

/// Keeps the state of `(kind, key)` at `version`, so a stale write based on it can be told
/// what changed since.
pub(crate) async fn keep_revision(
    conn: &mut sqlx::AnyConnection,
    kind: &str,
    key: &str,
    version: i64,
    payload: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ref_revisions (kind, key, version, payload) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, key, version) DO NOTHING",
    )
    .bind(kind)
    .bind(key)
    .bind(version)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a `PUT` of a reference entity starts with: the caller, who must hold `scope`; the body
/// as `T`; and the `Idempotency-Key` — or, in `Err`, the answer a retried request gets again.
pub(crate) async fn put_request<T: DeserializeOwned>(
    hq: &Hq,
    headers: &HeaderMap,
    scope: crate::identity::Scope,
    path: &str,
    body: Body,
) -> ApiResult<Result<(String, T, Option<Key>), Response>> {
    let actor = crate::api::authorize(hq, headers, scope, None, crate::api::Access::Write).await?;
    let (value, bytes): (T, _) = json_body(headers, body).await?;
    Ok(
        match idempotency(hq, headers, &actor, &[b"PUT ", path.as_bytes(), &bytes]).await? {
            Ok(key) => Ok((actor, value, key)),
            Err(answer) => Err(answer),
        },
    )
}

/// Refuses a body whose `field` (`given`) is not the entity of the path (`id`).
pub(crate) fn same_as_path(field: &str, given: &str, id: &str) -> ApiResult<()> {
    if given == id {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_field",
        format!("`{given}` is not the one of the path (`{id}`)"),
    )
    .at(field))
}

/// A reference entity to write: its kind and key in the change log, its payload as stores
/// receive it, and the answer's body (the version is added to it).
pub(crate) struct Entity<'a> {
    pub kind: &'a str,
    pub key: &'a str,
    pub payload: String,
    pub answer: Value,
}

/// Writes `entity` as the next version of the reference change log inside `tx` (which holds
/// the write guard) and commits: the `If-Match` checked against what HQ holds, the revision
/// kept, the audit line (`<kind>.create` or `<kind>.update`, before and after) and the
/// idempotency key's answer recorded with it. A payload equal to what HQ holds makes no new
/// version. The answer carries the version as its `ETag`; `201` for a new entity.
pub(crate) async fn put_entity(
    hq: &Hq,
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    headers: &HeaderMap,
    key: &Option<Key>,
    actor: &str,
    entity: Entity<'_>,
) -> ApiResult<Response> {
    let Entity {
        kind,
        key: id,
        payload,
        mut answer,
    } = entity;
    let held = held(&mut tx, kind, id).await?;
    check_version(&mut tx, headers, kind, id, held.as_ref()).await?;
    let before = held.as_ref().and_then(|h| h.payload.clone());
    if before.as_deref() == Some(payload.as_str()) {
        // Nothing changes: the answer is the entity as it is, and no new version is made.
        let version = held.as_ref().map_or(0, |h| h.version);
        answer["version"] = json!(version);
        remember(key, &mut tx, StatusCode::OK, &answer, crate::now_ms()).await?;
        tx.commit().await?;
        return Ok(tagged(StatusCode::OK, answer, version));
    }
    let (_, version) = crate::refdata::next_version(&mut tx, hq.db.backend).await?;
    if let Some(h) = &held {
        keep_revision(&mut tx, kind, id, h.version, h.payload.as_deref()).await?;
    }
    keep_revision(&mut tx, kind, id, version, Some(&payload)).await?;
    crate::refdata::write_entities(
        &mut tx,
        hq.db.backend,
        version,
        vec![(kind.to_owned(), id.to_owned(), Some(payload.clone()))],
    )
    .await?;
    crate::refdata::set_version(&mut tx, version).await?;
    let now = crate::now_ms();
    let target = format!("{kind}:{id}");
    let action = format!(
        "{kind}.{}",
        if before.is_some() { "update" } else { "create" }
    );
    crate::identity::Audit {
        at_ms: now,
        actor,
        source: None,
        action: &action,
        target: Some(&target),
        before: before.as_deref(),
        after: Some(&payload),
    }
    .append(&mut tx)
    .await?;
    let status = if before.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    answer["version"] = json!(version);
    remember(key, &mut tx, status, &answer, now).await?;
    tx.commit().await?;
    hq.announce_version(version);
    Ok(tagged(status, answer, version))
}

#[cfg(test)]
mod tests {
    use super::differences;
    use serde_json::json;

    #[test]
    fn differences_name_the_paths_that_changed() {
        let mut out = Vec::new();
        differences(
            "",
            &json!({"a": 1, "v": {"name": "x", "ids": [1, 2], "same": true}}),
            &json!({"a": 1, "v": {"name": "y", "ids": [1], "same": true}, "new": 0}),
            &mut out,
        );
        assert_eq!(out, ["new", "v.ids", "v.name"]);
    }
}
