//! The hand-written OpenAPI document agrees with the router: same (method, path) pairs, and
//! every write documents the required `Idempotency-Key` header.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::Value;

/// The sources of the routers, scanned for their `.route("PATH", method(handler))` calls: the
/// source and the function that builds the router.
const ROUTER_SOURCES: [(&str, &str); 6] = [
    (include_str!("../src/till.rs"), "pub fn routes("),
    (include_str!("../src/api.rs"), "pub fn router("),
    (include_str!("../src/staff_api.rs"), "pub fn routes("),
    (include_str!("../src/printing.rs"), "pub fn routes("),
    (include_str!("../src/stored_value.rs"), "pub fn routes("),
    (include_str!("../src/cards_api.rs"), "pub fn routes("),
];

/// HTTP methods an OpenAPI path item can hold (and axum's routing functions of the same names).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The POSTs that append nothing to the ledger and need no idempotency key.
const READ_ONLY_POSTS: [&str; 12] = [
    "/v1/shifts/report/print",
    "/v1/till/settle",
    "/v1/display/{terminal}",
    "/v1/carts/price",
    "/v1/sign-in",
    "/v1/sign-out",
    "/v1/receipts/{number}/print",
    // Card operations idempotent by their natural key: an approval settles once, a payment is
    // reversed once, a return is refunded once (by reference or to a presented card).
    "/v1/card-payments/reconcile-offline",
    "/v1/card-payments/refund",
    "/v1/card-payments/refund-return",
    "/v1/card-payments/{poi}/reverse",
    "/v1/card-payments/{poi}/refund",
];

fn document() -> Value {
    serde_json::from_str(store::api::OPENAPI).unwrap()
}

/// The body of the function building a router, so nothing outside it is mistaken for a route.
fn router_source(source: &'static str, function: &str) -> &'static str {
    let start = source
        .find(function)
        .unwrap_or_else(|| panic!("no `{function}` in the router sources"));
    let rest = &source[start..];
    let end = rest.find("\n}\n").expect("the router ends with a `}` line");
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
    let segments = ROUTER_SOURCES
        .iter()
        .flat_map(|(source, function)| router_source(source, function).split(".route(").skip(1));
    for segment in segments {
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

/// A parameter, following a local `$ref` if it is one.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("`{reference}` is not a local reference"));
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("`{reference}` points at nothing"))
        }
        None => value,
    }
}

/// Whether the operation (or its path item) documents `Idempotency-Key` as a required header.
fn requires_idempotency_key(doc: &Value, method: &str, path: &str) -> bool {
    let item = &doc["paths"][path];
    [&item["parameters"], &item[method]["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| resolve(doc, p))
        .any(|p| {
            p["in"] == "header"
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("Idempotency-Key"))
                && p["required"] == true
        })
}

#[test]
fn the_router_source_is_understood() {
    let routes = routed();
    assert!(routes.contains(&("get".to_owned(), "/v1/items/{code}".to_owned())));
    assert!(routes.contains(&("post".to_owned(), "/v1/sales".to_owned())));
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
fn every_write_requires_an_idempotency_key() {
    let doc = document();
    let writes: Vec<_> = routed()
        .into_iter()
        .filter(|(method, path)| method == "post" && !READ_ONLY_POSTS.contains(&path.as_str()))
        .collect();
    assert!(!writes.is_empty());
    for (method, path) in &writes {
        assert!(
            requires_idempotency_key(&doc, method, path),
            "{method} {path} does not document a required Idempotency-Key header"
        );
        assert!(
            doc["paths"][path.as_str()][method.as_str()]["responses"]
                .get("201")
                .is_some(),
            "{method} {path} does not document its 201 response"
        );
    }
    for path in READ_ONLY_POSTS {
        assert!(
            !requires_idempotency_key(&doc, "post", path),
            "post {path} writes nothing and must not require an Idempotency-Key"
        );
    }
}
