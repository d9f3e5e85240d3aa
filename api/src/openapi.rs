//! The OpenAPI 3.1 document, generated from the handlers' annotations: every API route is
//! registered through `api_router`, which records it in the document as it adds it.
//!
//! The error answers are added centrally (`add_error_responses`), from what each
//! operation has: every `/api/v1` operation can answer 429 (with `Retry-After`) and 503
//! (the server is full, or the request took too long); one with a key 401 and 403; one
//! with path parameters 400 and 404; one with query parameters (or a hostname in its
//! path) 422; one with a body 400, 413 and 422; writes 409. Handlers annotate only what
//! is their own (a 502 from a payment provider). Every error has the `ErrorBody` shape,
//! which `extract::json_errors` makes true of the framework's rejections too.

use crate::platform::Platform;
use crate::{builds, catalog, commerce, feeds, tenants};
use std::sync::Arc;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Aurelio API",
        description = "Headless commerce API of Aurelio: shops, catalog, builds. \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`; money is integer minor units \
            with an ISO 4217 currency.",
    ),
    modifiers(&Security),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics and this document"),
        (name = "tenants", description = "Shops, provisioned by the platform admin"),
        (name = "keys", description = "A shop's API keys"),
        (name = "catalog", description = "Products, variants, categories, collections, pages, images"),
        (name = "theme", description = "The shop's theme"),
        (name = "builds", description = "Storefront builds and publishing"),
        (name = "domains", description = "Custom domains: claim, DNS verification, certificates"),
        (name = "carts", description = "Carts and checkout, for the storefront script (publishable key)"),
        (name = "checkout", description = "Discounts, shipping and tax settings"),
        (name = "orders", description = "Orders and their state machine"),
        (name = "payments", description = "Payment providers and their webhooks"),
        (name = "webhooks", description = "Outgoing webhooks"),
        (name = "feeds", description = "Product feeds for Google, Meta and TikTok"),
        (name = "jobs", description = "Background jobs: builds, deliveries, checks, schedules"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description.to_owned()))
                    .build(),
            )
        };
        components.add_security_scheme(
            "secret_key",
            bearer("A shop's secret key, `sk_...`, with a role"),
        );
        components.add_security_scheme(
            "publishable_key",
            bearer("A shop's publishable key, `pk_...`: public reads, carts and checkout"),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("The platform admin token (AURELIO_ADMIN_TOKEN)"),
        );
    }
}

/// Every API route, with the document describing them. Every error they answer is in
/// the standard error body (`extract::json_errors`).
pub fn api_router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tenants::router())
        .merge(catalog::router())
        .merge(builds::router())
        .merge(crate::domains::router())
        .merge(commerce::router())
        .merge(feeds::router())
        .merge(crate::jobs::routes::router())
        .layer(axum::middleware::map_response(crate::extract::json_errors))
}

/// Status codes some operations answer beyond what their shape implies, by operation id.
const EXTRA: &[(&str, &[u16])] = &[
    ("get_stripe", &[409]),
    ("confirm_payment", &[409]),
    ("stripe_webhook", &[409]),
    ("refund", &[502]),
    ("cancel", &[502]),
];

/// What each error status means, for the document.
fn meaning(status: u16) -> &'static str {
    match status {
        400 => "malformed request (JSON syntax, path encoding)",
        401 => "no key, or an unknown or revoked one",
        403 => "the key's role or kind does not allow this, or the shop is suspended",
        404 => "not found (or another shop's)",
        409 => "conflicts with the current state (taken, out of stock, state machine)",
        413 => "the body is too large",
        415 => "unsupported content type",
        422 => "invalid input; `field` names it",
        429 => "too many requests; retry after `Retry-After` seconds",
        502 => "the payment provider refused or could not be reached",
        503 => "a dependency is unavailable or the server is overloaded; retry",
        _ => "error",
    }
}

/// Completes the document: the error answers of every operation, and the document's own
/// route.
pub fn add_document_path(doc: &mut utoipa::openapi::OpenApi) {
    add_error_responses(doc);
    add_openapi_route(doc);
}

/// Adds to every `/api/v1` operation the error answers it can give (see the module doc).
pub fn add_error_responses(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in &mut doc.paths.paths {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let shared = item.parameters.clone().unwrap_or_default();
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            if let Some(op) = op {
                let statuses = error_statuses(method, op, &shared);
                for status in statuses {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(error_response(status)));
                }
            }
        }
    }
}

fn error_statuses(
    method: &str,
    op: &Operation,
    shared: &[RefOr<utoipa::openapi::path::Parameter>],
) -> Vec<u16> {
    let mut out = vec![429, 503];
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        out.extend([401, 403]);
    }
    let params = op.parameters.iter().flatten().chain(shared);
    let has = |place: ParameterIn| {
        params.clone().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    if has(ParameterIn::Path) {
        out.extend([400, 404]);
    }
    // Hostnames in paths are checked (IDNA, public suffixes) before they are looked up.
    if params.clone().any(|p| matches!(p, RefOr::T(p) if p.name == "hostname")) {
        out.push(422);
    }
    if has(ParameterIn::Query) {
        out.push(422);
    }
    if op.request_body.is_some() {
        out.extend([400, 413, 422]);
    }
    if method != "get" {
        out.push(409);
    }
    let id = op.operation_id.as_deref().unwrap_or_default();
    if let Some((_, extra)) = EXTRA.iter().find(|(name, _)| *name == id) {
        out.extend(extra.iter().copied());
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn error_response(status: u16) -> utoipa::openapi::response::Response {
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    let mut response =
        ResponseBuilder::new().description(meaning(status)).content("application/json", body);
    if status == 429 {
        let seconds = utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .build();
        let mut header = utoipa::openapi::header::Header::new(seconds);
        header.description = Some("seconds to wait before retrying".into());
        response = response.header("Retry-After", header);
    }
    response.build()
}

/// Adds the document's own route (`GET /api/v1/openapi.json`) to the document.
fn add_openapi_route(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::HttpMethod;
    use utoipa::openapi::path::OperationBuilder;
    let operation = OperationBuilder::new()
        .tag("health")
        .summary(Some("This OpenAPI 3.1 document"))
        .operation_id(Some("openapi_json"))
        .response("200", ResponseBuilder::new().description("the document").build())
        .build();
    doc.paths.add_path_operation("/api/v1/openapi.json", vec![HttpMethod::Get], operation);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_area_is_documented() {
        let (_, doc) = api_router().split_for_parts();
        for path in [
            "/api/v1/tenants",
            "/api/v1/products",
            "/api/v1/carts",
            "/api/v1/feeds",
            "/api/v1/builds/{id}",
        ] {
            assert!(doc.paths.paths.contains_key(path), "{path} is not in the document");
        }
    }

    #[test]
    fn every_operation_lists_its_errors() {
        let (_, mut doc) = api_router().split_for_parts();
        add_document_path(&mut doc);
        let json = serde_json::to_value(&doc).unwrap();
        let ops = json["paths"].as_object().unwrap();
        let get = |path: &str, method: &str| ops[path][method]["responses"].clone();
        let cart_line = get("/api/v1/carts/{token}/lines", "post");
        for status in ["400", "401", "403", "404", "409", "413", "422", "429", "503"] {
            assert!(cart_line.get(status).is_some(), "add to cart does not list {status}");
        }
        assert!(get("/api/v1/tenants", "get").get("422").is_some(), "a bad `limit` is a 422");
        assert_eq!(
            get("/api/v1/products", "get")["429"]["headers"]["Retry-After"]["schema"]["type"],
            "integer"
        );
        assert_eq!(
            get("/api/v1/keys/{id}", "delete")["404"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(json["components"]["schemas"]["ErrorBody"].is_object());
    }
}
