//! The catalog's categories: a tree of reference entities (`category`), each under another or
//! at the top, which products name. Written like every reference entity (`PUT` with
//! `If-Match`, a new version of the change log, audited); the tree is checked whole on every
//! write, so no category ever sits under itself or under one HQ does not hold.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use protocol::seed::CategoryDto;
use serde_json::{Value, json};

use crate::api::{Access, ApiError, ApiResult, Hq, authorize};
use crate::extract::Path;
use crate::identity::Scope;
use crate::writes;

/// Every category HQ holds, by id.
pub(crate) async fn held(
    conn: &mut sqlx::AnyConnection,
) -> Result<BTreeMap<String, CategoryDto>, sqlx::Error> {
    let rows: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT payload FROM ref_entities WHERE kind = 'category' AND payload IS NOT NULL",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|p| serde_json::from_str::<CategoryDto>(p.as_deref()?).ok())
        .map(|c| (c.id.clone(), c))
        .collect())
}

/// The names from the top down to `id` (`Food › Bakery`), or `id` itself when HQ does not
/// hold it.
pub(crate) fn path_of(tree: &BTreeMap<String, CategoryDto>, id: &str) -> String {
    let mut names = Vec::new();
    let mut at = Some(id);
    while let Some(current) = at {
        let Some(category) = tree.get(current) else {
            names.push(current.to_owned());
            break;
        };
        names.push(category.name.clone());
        at = category.parent.as_deref();
        if names.len() > tree.len() {
            break;
        }
    }
    names.reverse();
    names.join(" › ")
}

/// `GET /v1/categories` (`catalog:read`): the tree, each with the path of names to it.
pub(crate) async fn list(State(hq): State<Arc<Hq>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authorize(&hq, &headers, Scope::CatalogRead, None, Access::Read).await?;
    let mut conn = hq.db.pool.acquire().await?;
    let tree = held(&mut conn).await?;
    let categories: Vec<Value> = tree
        .values()
        .map(|c| json!({"id": c.id, "name": c.name, "parent": c.parent, "path": path_of(&tree, &c.id)}))
        .collect();
    Ok(Json(json!({ "categories": categories })))
}

/// `PUT /v1/categories/{id}` (`catalog:write`): adds the category, or renames or moves it when
/// `If-Match` names the version it was read at. Its parent must be a category HQ holds, and
/// not the category itself or one under it.
pub(crate) async fn write(
    State(hq): State<Arc<Hq>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let path = format!("/v1/categories/{id}");
    let (actor, category, key) =
        match writes::put_request::<CategoryDto>(&hq, &headers, Scope::CatalogWrite, &path, body)
            .await?
        {
            Ok(asked) => asked,
            Err(answer) => return Ok(answer),
        };
    writes::same_as_path("id", &category.id, &id)?;
    let category = CategoryDto {
        name: category.name.trim().to_owned(),
        ..category
    };
    category.check("").map_err(crate::stores::field_error)?;
    let (_guard, mut tx) = hq.db.begin_write().await?;
    let mut tree = held(&mut tx).await?;
    tree.insert(id.clone(), category.clone());
    let all: Vec<CategoryDto> = tree.into_values().collect();
    CategoryDto::check_tree(&all, "categories").map_err(|e| {
        // Only the written category changed, so whatever is wrong is wrong with its parent.
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", e.reason).at("parent")
    })?;
    let payload = serde_json::to_string(&category)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    writes::put_entity(
        &hq,
        tx,
        &headers,
        &key,
        &actor,
        writes::Entity {
            kind: "category",
            key: &id,
            payload,
            answer: json!({ "category": category }),
        },
    )
    .await
}
