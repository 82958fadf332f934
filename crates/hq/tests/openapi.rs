//! The hand-written OpenAPI document agrees with the router: same (method, path) pairs, and
//! every sync operation declares the store credential it requires.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::Value;

/// The source of the router, scanned for its `.route("PATH", method(handler))` calls.
const API_SOURCE: &str = include_str!("../src/api.rs");

/// HTTP methods an OpenAPI path item can hold (and axum's routing functions of the same names).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The prefix of the endpoints store nodes call with their store credential.
const SYNC_PREFIX: &str = "/v1/sync/";

/// The security scheme of the store credential.
const STORE_CREDENTIAL: &str = "storeCredential";

fn document() -> Value {
    serde_json::from_str(hq::api::OPENAPI).unwrap()
}

/// The body of `pub fn router`, so nothing outside it is mistaken for a route.
fn router_source() -> &'static str {
    let start = API_SOURCE
        .find("pub fn router(")
        .expect("api.rs has `pub fn router(`");
    let rest = &API_SOURCE[start..];
    let end = rest.find("\n}\n").expect("`router` ends with a `}` line");
    &rest[..end]
}

/// The arguments of a call whose opening parenthesis is just before `text`: everything up to
/// the matching closing parenthesis, skipping string literals.
fn call_arguments(text: &str) -> &str {
    let mut depth = 1_usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in a `.route(` call: {text}");
}

/// The methods a method router expression such as `get(a).post(b)` serves.
fn served_methods(handlers: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for method in METHODS {
        let call = format!("{method}(");
        let mut from = 0;
        while let Some(at) = handlers[from..].find(&call) {
            let at = from + at;
            let before = handlers[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                found.push(method);
            }
            from = at + call.len();
        }
    }
    found
}

/// Every (method, path) the router serves, read from the source of `router()`.
fn routed() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for segment in router_source().split(".route(").skip(1) {
        let args = call_arguments(segment);
        let (path, handlers) = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|s| s.split_once('"'))
            .expect("the first argument of `.route(` is a string literal");
        let methods = served_methods(handlers);
        assert!(
            !methods.is_empty(),
            "no method found for route `{path}` in `{handlers}`"
        );
        for method in methods {
            routes.insert((method.to_owned(), path.to_owned()));
        }
    }
    routes
}

/// Every (method, path) the OpenAPI document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for method in METHODS {
            if item.contains_key(method) {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

/// Whether the operation's security requirements (or, when it has none of its own, the
/// document's) all include the store credential, so that none lets a request in without it.
fn requires_store_credential(doc: &Value, method: &str, path: &str) -> bool {
    let operation = &doc["paths"][path][method];
    let requirements = operation
        .get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array);
    requirements.is_some_and(|alternatives| {
        !alternatives.is_empty()
            && alternatives.iter().all(|requirement| {
                requirement
                    .as_object()
                    .is_some_and(|schemes| schemes.contains_key(STORE_CREDENTIAL))
            })
    })
}

#[test]
fn the_router_source_is_understood() {
    let routes = routed();
    assert!(routes.contains(&("post".to_owned(), "/v1/sync/push".to_owned())));
    assert!(routes.contains(&("get".to_owned(), "/metrics".to_owned())));
    assert_eq!(
        served_methods(r#", get(status).post(set_status)"#),
        ["get", "post"]
    );
    assert_eq!(served_methods(", get(post_it)"), ["get"]);
}

#[test]
fn documented_operations_are_the_routed_ones() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let routed = routed();
    let documented = documented(&doc);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not documented: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

#[test]
fn every_sync_operation_requires_the_store_credential() {
    let doc = document();
    let scheme = &doc["components"]["securitySchemes"][STORE_CREDENTIAL];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let sync: Vec<_> = documented(&doc)
        .into_iter()
        .filter(|(_, path)| path.starts_with(SYNC_PREFIX))
        .collect();
    assert!(!sync.is_empty());
    for (method, path) in &sync {
        assert!(
            requires_store_credential(&doc, method, path),
            "{method} {path} does not declare the `{STORE_CREDENTIAL}` security requirement"
        );
    }
}

/// A response object, its `$ref` to `#/components/responses/…` followed.
fn resolved<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            &doc["components"]["responses"][name]
        }
        None => response,
    }
}

/// Every operation with its method, path and object.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                out.push((method.to_owned(), path.clone(), operation));
            }
        }
    }
    out
}

#[test]
fn every_operation_that_takes_a_credential_documents_401() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        let open = operation["security"]
            .as_array()
            .is_some_and(|alternatives| alternatives.is_empty());
        assert_eq!(
            operation["responses"].get("401").is_some(),
            !open,
            "{method} {path}: 401 documented if and only if a credential can be asked for"
        );
    }
}

#[test]
fn every_error_answer_is_documented_as_the_json_error() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if !status.starts_with('4') && !status.starts_with('5') {
                continue;
            }
            let content = resolved(&doc, response)["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status} has no content"));
            let types: Vec<&String> = content.keys().collect();
            assert_eq!(types, ["application/json"], "{method} {path} {status}");
            let schema = content["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_default();
            assert!(
                [
                    "#/components/schemas/Error",
                    "#/components/schemas/Rejection",
                    "#/components/schemas/Stale"
                ]
                .contains(&schema),
                "{method} {path} {status} answers {schema}"
            );
        }
    }
    let error = &doc["components"]["schemas"]["Error"]["properties"];
    for field in ["code", "message", "field"] {
        assert!(error[field]["description"].is_string(), "Error.{field}");
    }
    // A stale write's answer is the error with what the entity is now.
    let stale = &doc["components"]["schemas"]["Stale"];
    for field in ["code", "message", "field"] {
        assert_eq!(
            stale["properties"][field]["type"], "string",
            "Stale.{field}"
        );
    }
    assert_eq!(stale["required"], serde_json::json!(["code", "message"]));
}

#[test]
fn the_push_documents_every_refusal_it_answers() {
    let doc = document();
    let responses = &doc["paths"]["/v1/sync/push"]["post"]["responses"];
    for status in [
        "200", "400", "401", "403", "409", "413", "415", "422", "500", "503",
    ] {
        assert!(
            responses.get(status).is_some(),
            "push does not document {status}"
        );
    }
    let media: Vec<&String> = doc["paths"]["/v1/sync/push"]["post"]["requestBody"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(media, [protocol::sync::BATCH_MEDIA_TYPE]);
}
