//! The OpenAPI 3.1 document, generated from the handlers' annotations: every API route is
//! registered through `api_router`, which records it in the document as it adds it.

use crate::server::Platform;
use crate::{builds, catalog, commerce, feeds, tenants};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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

/// Every API route, with the document describing them.
pub fn api_router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tenants::router())
        .merge(catalog::router())
        .merge(builds::router())
        .merge(crate::domains::router())
        .merge(commerce::router())
        .merge(feeds::router())
}

/// Adds the document's own route (`GET /api/v1/openapi.json`) to the document.
pub fn add_document_path(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::HttpMethod;
    use utoipa::openapi::path::OperationBuilder;
    use utoipa::openapi::response::ResponseBuilder;
    let operation = OperationBuilder::new()
        .tag("health")
        .summary(Some("This OpenAPI 3.1 document"))
        .operation_id(Some("openapi_json"))
        .response("200", ResponseBuilder::new().description("the document").build())
        .build();
    doc.paths.add_path_operation("/api/v1/openapi.json", vec![HttpMethod::Get], operation);
}

#[cfg(test)]
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
}
