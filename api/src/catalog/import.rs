//! Import of Shopify's product CSV export.
//!
//! Shopify writes one row per variant (and extra rows per image), grouped by `Handle`; the
//! first row of a handle carries the product's fields. Each product is turned into a
//! `products.jsonl` line and validated by the engine like any other; a product with a
//! problem is skipped and every problem is reported with its CSV row and column, while the
//! other products are imported. Products whose handle exists are replaced.
//!
//! Image URLs cannot be fetched by the server (storefronts are built from uploaded
//! sources); they are listed as warnings so the merchant can upload them.
//!
//! A body is at most `MAX_IMPORT_BYTES` and `MAX_IMPORT_ROWS` rows (413 otherwise); it is
//! read, grouped and validated on the blocking pool, in time linear in its size (each
//! product is capped by the engine's `limits`), so an import never holds an async worker.

use super::store;
use crate::auth::{Permission, Tenant};
use crate::error::{ApiError, ApiResult};
use crate::platform::Platform;
use crate::platform::jobs;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Bytes of a CSV import body (Shopify's own import takes files of up to 15 MB).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;
/// Rows of a CSV import, the header not counted.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// Import routes.
pub fn router() -> OpenApiRouter<Arc<Platform>> {
    OpenApiRouter::new()
        .routes(routes!(import_shopify))
        .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
}

/// 413 with the standard error body: the import is larger than an import may be.
fn too_large(message: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message).with_field("body")
}

/// One problem of an import, with where it is.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RowProblem {
    /// 1-based CSV line of the row (the header is line 1).
    pub row: usize,
    /// The product's handle.
    pub handle: String,
    /// The CSV column, or the catalog field, at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ImportReport {
    /// Products created.
    pub created: usize,
    /// Products replaced (same handle).
    pub updated: usize,
    /// Products skipped because of errors.
    pub failed: usize,
    /// Every error, by row.
    pub errors: Vec<RowProblem>,
    /// Things not imported (image URLs) and similar notes.
    pub warnings: Vec<RowProblem>,
    /// The storefront build queued (absent for a dry run or when nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// Options of an import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check everything, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A product assembled from its rows.
#[derive(Debug)]
pub struct Assembled {
    /// Handle.
    pub handle: String,
    /// Line of its first row.
    pub row: usize,
    /// The `products.jsonl` line.
    pub doc: Map<String, Value>,
    /// Lines of its variant rows, in order (to place errors about `variants[i]`).
    pub variant_rows: Vec<usize>,
}

/// The cells of one CSV row, by column name.
struct Cells<'a> {
    record: &'a csv::StringRecord,
    col: &'a HashMap<&'a str, usize>,
}

impl<'a> Cells<'a> {
    fn get(&self, name: &str) -> &'a str {
        self.col.get(name).and_then(|&i| self.record.get(i)).map_or("", str::trim)
    }
}

/// Products grouped from a CSV, with the errors and warnings found while reading it.
type Grouped = (Vec<Assembled>, Vec<RowProblem>, Vec<RowProblem>);

/// Parses a Shopify product CSV into products plus problems found while reading it; 413
/// when it has more than `MAX_IMPORT_ROWS` rows.
pub fn parse_shopify(text: &str) -> ApiResult<Grouped> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().trim_start_matches('\u{feff}').to_owned()).collect(),
        Err(e) => {
            errors.push(RowProblem {
                row: 1,
                handle: String::new(),
                field: None,
                message: format!("the CSV cannot be read: {e}"),
            });
            return Ok((Vec::new(), errors, warnings));
        }
    };
    let col: HashMap<&str, usize> =
        headers.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
    if !col.contains_key("Handle") {
        errors.push(RowProblem {
            row: 1,
            handle: String::new(),
            field: Some("Handle".into()),
            message: "the header has no `Handle` column: is this a Shopify product export?".into(),
        });
        return Ok((Vec::new(), errors, warnings));
    }
    let mut products: Vec<Assembled> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        if i == MAX_IMPORT_ROWS {
            return Err(too_large(format!(
                "the CSV has more than {MAX_IMPORT_ROWS} rows: split it into several imports"
            )));
        }
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowProblem {
                    row,
                    handle: String::new(),
                    field: None,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let cells = Cells { record: &record, col: &col };
        let get = |name: &str| cells.get(name);
        let handle = get("Handle").to_owned();
        if handle.is_empty() {
            if record.iter().any(|f| !f.trim().is_empty()) {
                errors.push(RowProblem {
                    row,
                    handle,
                    field: Some("Handle".into()),
                    message: "the row has no handle".into(),
                });
            }
            continue;
        }
        let slot = *index.entry(handle.clone()).or_insert_with(|| {
            products.push(Assembled {
                handle: handle.clone(),
                row,
                doc: Map::new(),
                variant_rows: Vec::new(),
            });
            products.len() - 1
        });
        let product = &mut products[slot];
        if product.doc.is_empty() {
            product.doc = product_fields(&cells, &handle);
        }
        let image = get("Image Src");
        if !image.is_empty() {
            warnings.push(RowProblem {
                row,
                handle: handle.clone(),
                field: Some("Image Src".into()),
                message: format!("image `{image}` was not imported: upload it with POST /api/v1/images and add it to the product"),
            });
        }
        let price = get("Variant Price");
        let sku = get("Variant SKU");
        if price.is_empty() && sku.is_empty() {
            continue; // an image-only row
        }
        let variant = variant_fields(&cells, &product.doc, row, &handle, &mut errors);
        if let Some(Value::Array(variants)) = product.doc.get_mut("variants") {
            variants.push(Value::Object(variant));
        }
        product.variant_rows.push(row);
    }
    for p in &mut products {
        // Shopify's "Title: Default Title" means a product without options.
        let only_default = p.doc.get("options").and_then(Value::as_array).is_some_and(|o| {
            o.len() == 1 && o[0].get("name").and_then(Value::as_str) == Some("Title")
        });
        if only_default {
            p.doc.remove("options");
            if let Some(Value::Array(vs)) = p.doc.get_mut("variants") {
                for v in vs.iter_mut().filter_map(Value::as_object_mut) {
                    v.remove("options");
                }
            }
        }
    }
    Ok((products, errors, warnings))
}

fn product_fields(cells: &Cells<'_>, handle: &str) -> Map<String, Value> {
    let get = |name: &str| cells.get(name);
    let mut doc = Map::new();
    doc.insert("handle".into(), json!(handle));
    doc.insert("title".into(), json!(get("Title")));
    let body = get("Body (HTML)");
    if !body.is_empty() {
        doc.insert("description".into(), json!(body));
    }
    for (col, key) in [("Vendor", "vendor"), ("Type", "product_type")] {
        if !get(col).is_empty() {
            doc.insert(key.into(), json!(get(col)));
        }
    }
    let tags: Vec<&str> = get("Tags").split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    if !tags.is_empty() {
        doc.insert("tags".into(), json!(tags));
    }
    let mut options = Vec::new();
    for n in 1..=3 {
        let name = get(&format!("Option{n} Name"));
        if !name.is_empty() {
            options.push(json!({ "name": name, "values": [] }));
        }
    }
    if !options.is_empty() {
        doc.insert("options".into(), Value::Array(options));
    }
    let status = match get("Status").to_ascii_lowercase().as_str() {
        "draft" => "draft",
        "archived" => "archived",
        "" if get("Published").eq_ignore_ascii_case("false") => "draft",
        _ => "active",
    };
    doc.insert("status".into(), json!(status));
    let (title, description) = (get("SEO Title"), get("SEO Description"));
    if !title.is_empty() || !description.is_empty() {
        let mut seo = Map::new();
        if !title.is_empty() {
            seo.insert("title".into(), json!(title));
        }
        if !description.is_empty() {
            seo.insert("description".into(), json!(description));
        }
        doc.insert("seo".into(), Value::Object(seo));
    }
    doc.insert("variants".into(), json!([]));
    doc
}

fn variant_fields(
    cells: &Cells<'_>,
    doc: &Map<String, Value>,
    row: usize,
    handle: &str,
    errors: &mut Vec<RowProblem>,
) -> Map<String, Value> {
    let get = |name: &str| cells.get(name);
    let mut v = Map::new();
    v.insert("sku".into(), json!(get("Variant SKU")));
    v.insert("price".into(), json!(get("Variant Price")));
    let compare = get("Variant Compare At Price");
    if !compare.is_empty() {
        v.insert("compare_at_price".into(), json!(compare));
    }
    let names: Vec<String> = doc
        .get("options")
        .and_then(Value::as_array)
        .map(|o| {
            o.iter()
                .filter_map(|o| o.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut options = Map::new();
    for (n, name) in names.iter().enumerate() {
        let value = get(&format!("Option{} Value", n + 1));
        if !value.is_empty() {
            options.insert(name.clone(), json!(value));
        }
    }
    if !options.is_empty() {
        v.insert("options".into(), Value::Object(options));
    }
    if !get("Variant Inventory Tracker").is_empty() {
        let qty = get("Variant Inventory Qty");
        match qty.parse::<i64>() {
            Ok(n) => {
                v.insert("inventory".into(), json!(n));
            }
            Err(_) if qty.is_empty() => {
                v.insert("inventory".into(), json!(0));
            }
            Err(_) => errors.push(RowProblem {
                row,
                handle: handle.to_owned(),
                field: Some("Variant Inventory Qty".into()),
                message: format!("`{qty}` is not a whole number"),
            }),
        }
    }
    if get("Variant Inventory Policy").eq_ignore_ascii_case("continue") {
        v.insert("inventory_policy".into(), json!("continue"));
    }
    let grams = get("Variant Grams");
    if !grams.is_empty() && grams != "0" && grams != "0.0" {
        v.insert("weight".into(), json!(format!("{grams} g")));
    }
    let barcode = get("Variant Barcode").trim_start_matches('\'');
    if !barcode.is_empty() {
        let key = if aurelio_engine::catalog::gtin_is_valid(barcode) { "gtin" } else { "barcode" };
        v.insert(key.into(), json!(barcode));
    }
    v
}

/// Fills each option's `values` from the variants, in order of first use (a hash set of
/// the values seen, so linear in the variants).
fn fill_option_values(doc: &mut Map<String, Value>) {
    let names: Vec<String> = match doc.get("options") {
        Some(Value::Array(options)) => options
            .iter()
            .map(|o| o.get("name").and_then(Value::as_str).unwrap_or_default().to_owned())
            .collect(),
        _ => return,
    };
    let mut filled: Vec<Vec<Value>> = vec![Vec::new(); names.len()];
    if let Some(Value::Array(variants)) = doc.get("variants") {
        for (name, values) in names.iter().zip(&mut filled) {
            let mut seen: HashSet<&str> = HashSet::new();
            for value in variants.iter().filter_map(|v| v.get("options")?.get(name)?.as_str()) {
                if seen.insert(value) {
                    values.push(Value::String(value.to_owned()));
                }
            }
        }
    }
    if let Some(Value::Array(options)) = doc.get_mut("options") {
        for (option, values) in options.iter_mut().zip(filled) {
            if let Some(option) = option.as_object_mut() {
                option.insert("values".into(), Value::Array(values));
            }
        }
    }
}

/// The CSV row a diagnostic about `field` of an assembled product points at.
fn row_of(p: &Assembled, field: Option<&str>) -> usize {
    let index = field
        .and_then(|f| f.strip_prefix("variants["))
        .and_then(|f| f.split(']').next())
        .and_then(|n| n.parse::<usize>().ok());
    index.and_then(|i| p.variant_rows.get(i).copied()).unwrap_or(p.row)
}

/// A product of an import, checked: its problems by row, or the product and its line.
type Checked = (Assembled, Result<(aurelio_engine::catalog::Product, String), Vec<RowProblem>>);

/// Reads, groups and validates a whole import (CPU only: run it off the async threads).
fn check_import(
    body: &[u8],
    currency: aurelio_engine::money::Currency,
    categories: &[String],
) -> ApiResult<(Vec<Checked>, ImportReport)> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the CSV is not UTF-8"))?;
    let (products, mut errors, warnings) = parse_shopify(text)?;
    if products.is_empty() && !errors.is_empty() {
        let first = errors.remove(0);
        let mut e = ApiError::invalid(first.field.clone().unwrap_or_default(), first.message);
        e.code = "import_failed";
        return Err(e);
    }
    let failed_handles: HashSet<String> = errors.iter().map(|e| e.handle.clone()).collect();
    let mut report = ImportReport { warnings, errors, ..ImportReport::default() };
    let rules =
        aurelio_engine::catalog::LineRules::new(currency, categories.iter().map(String::as_str));
    let mut checked = Vec::with_capacity(products.len());
    for mut p in products {
        if failed_handles.contains(&p.handle) {
            report.failed += 1;
            continue;
        }
        fill_option_values(&mut p.doc);
        let result = store::check_line(&p.doc, &rules).map_err(|e| {
            let details = if e.details.is_empty() {
                vec![crate::error::Detail {
                    code: e.code.into(),
                    message: e.message.clone(),
                    field: e.field.clone(),
                }]
            } else {
                e.details
            };
            details
                .into_iter()
                .map(|d| RowProblem {
                    row: row_of(&p, d.field.as_deref()),
                    handle: p.handle.clone(),
                    field: d.field,
                    message: d.message,
                })
                .collect()
        });
        checked.push((p, result));
    }
    Ok((checked, report))
}

/// Import products from a Shopify product CSV export (`text/csv` body). Each product with
/// a problem is skipped and reported by CSV row; the others are created or replaced. The
/// body is at most 16 MiB and 50,000 rows (413 `too_large` otherwise); each product is
/// held to the limits of `POST /api/v1/products` (at most 2,048 variants).
#[utoipa::path(post, path = "/api/v1/import/shopify", tag = "catalog", params(ImportQuery),
    request_body(content = String, content_type = "text/csv"), security(("secret_key" = [])),
    responses((status = 200, body = ImportReport), (status = 413, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn import_shopify(
    tenant: Tenant,
    Query(q): Query<ImportQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ImportReport>> {
    tenant.require(Permission::CatalogWrite)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(format!(
                "the CSV is larger than {} MiB: split it into several imports",
                MAX_IMPORT_BYTES / (1024 * 1024)
            ))
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let currency = store::currency(&tenant.db).await?;
    let categories = store::category_handles(&tenant.db).await?;
    let (checked, mut report) =
        super::off_async(true, move || check_import(&body, currency, &categories)).await??;
    let backend = tenant.platform.pools.backend();
    for (p, result) in checked {
        let (product, line) = match result {
            Ok(ok) => ok,
            Err(problems) => {
                report.failed += 1;
                report.errors.extend(problems);
                continue;
            }
        };
        if q.dry_run {
            report.created += 1;
            continue;
        }
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM products WHERE handle = $1")
                .bind(&p.handle)
                .fetch_optional(&tenant.db)
                .await?;
        let result = match &existing {
            Some(id) => {
                store::replace_product(backend, &tenant.db, id, &product, &line).await.map(|_| ())
            }
            None => {
                store::insert_product(backend, &tenant.db, None, &product, &line).await.map(|_| ())
            }
        };
        match result {
            Ok(()) if existing.is_some() => report.updated += 1,
            Ok(()) => report.created += 1,
            Err(e) => {
                report.failed += 1;
                report.errors.push(RowProblem {
                    row: p.row,
                    handle: p.handle.clone(),
                    field: e.field,
                    message: e.message,
                });
            }
        }
    }
    report.errors.sort_by_key(|e| e.row);
    if !q.dry_run && report.created + report.updated > 0 {
        report.build_id =
            Some(jobs::request_build(&tenant.platform, &tenant.shop.id, "import").await?);
        tenant
            .audit("import.shopify", json!({ "created": report.created, "updated": report.updated, "failed": report.failed }))
            .await;
    }
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,Variant Price,Variant Compare At Price,Variant Barcode,Image Src,Status\n\
tee,Tee,<p>Soft</p>,Acme,Shirts,\"a, b\",TRUE,Size,S,TEE-S,200,shopify,5,deny,19.99,24.99,4006381333931,https://cdn.example/tee.jpg,active\n\
tee,,,,,,,,M,TEE-M,200,shopify,0,continue,19.99,,,,\n\
tee,,,,,,,,,,,,,,,,,https://cdn.example/tee-2.jpg,\n\
mug,Mug,,,,,TRUE,Title,Default Title,MUG,0,,,,9.50,,,,draft\n";

    #[test]
    fn groups_rows_by_handle_into_products() {
        let (products, errors, warnings) = parse_shopify(CSV).expect("parsed");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(products.len(), 2);
        let mut tee = products[0].doc.clone();
        fill_option_values(&mut tee);
        assert_eq!(tee["tags"], json!(["a", "b"]));
        assert_eq!(tee["options"], json!([{ "name": "Size", "values": ["S", "M"] }]));
        assert_eq!(tee["variants"][0]["gtin"], json!("4006381333931"));
        assert_eq!(tee["variants"][0]["inventory"], json!(5));
        assert_eq!(tee["variants"][1]["inventory_policy"], json!("continue"));
        assert_eq!(tee["variants"][1]["weight"], json!("200 g"));
        assert_eq!(products[0].variant_rows, vec![2, 3]);
        let mug = &products[1].doc;
        assert!(mug.get("options").is_none());
        assert_eq!(mug["status"], json!("draft"));
        assert_eq!(warnings.len(), 2);
        assert_eq!(warnings[1].row, 4);
    }

    #[test]
    fn variant_errors_point_at_their_row() {
        let (products, _, _) = parse_shopify(CSV).expect("parsed");
        assert_eq!(row_of(&products[0], Some("variants[1].price")), 3);
        assert_eq!(row_of(&products[0], Some("title")), 2);
    }

    #[test]
    fn rows_are_capped() {
        let mut csv = String::from("Handle,Variant SKU,Variant Price\n");
        for i in 0..MAX_IMPORT_ROWS {
            csv.push_str(&format!("h{i},S{i},1.00\n"));
        }
        assert!(parse_shopify(&csv).is_ok(), "exactly the cap");
        csv.push_str("one,more,1.00\n");
        let e = parse_shopify(&csv).expect_err("one row too many");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(e.code, "too_large");
    }

    #[test]
    fn option_values_are_each_listed_once() {
        let variants: Vec<Value> = (0..20_000)
            .map(|i| json!({"options": {"Size": if i % 2 == 0 { "S" } else { "M" }}}))
            .collect();
        let mut doc = Map::new();
        doc.insert("options".into(), json!([{"name": "Size"}, {"name": "Unused"}]));
        doc.insert("variants".into(), Value::Array(variants));
        fill_option_values(&mut doc);
        assert_eq!(
            doc["options"],
            json!([{"name": "Size", "values": ["S", "M"]}, {"name": "Unused", "values": []}])
        );
    }

    #[test]
    fn rejects_files_that_are_not_shopify_exports() {
        let (products, errors, _) = parse_shopify("name,price\nx,1\n").expect("parsed");
        assert!(products.is_empty());
        assert_eq!(errors[0].field.as_deref(), Some("Handle"));
    }
}
