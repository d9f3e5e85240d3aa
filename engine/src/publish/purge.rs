//! The CDN side of a deploy: the list of URLs whose content changed (absolute, from the
//! site's base URL) and the optional webhook that receives it.
//!
//! A failed webhook is reported, never undoes a deploy: the files are already live.

use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What a CDN should purge after a deploy; the body POSTed to the purge webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeList {
    /// The deploy.
    pub deploy: String,
    /// The site's base URL; `None` when unknown (the URLs are then site-absolute paths).
    pub base_url: Option<String>,
    /// Changed URLs, sorted. A directory page is listed as `…/dir/` and `…/dir/index.html`.
    pub urls: Vec<String>,
}

/// The base URL of a built site: `--base-url` when given, else the `Sitemap:` line of its
/// `robots.txt`.
pub fn base_url(site: &Path, given: Option<&str>) -> Option<String> {
    if let Some(url) = given {
        return Some(url.trim_end_matches('/').to_owned());
    }
    let robots = std::fs::read_to_string(site.join("robots.txt")).ok()?;
    robots.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let url = value.trim().strip_suffix("sitemap.xml")?;
        (key.trim().eq_ignore_ascii_case("sitemap") && url.starts_with("http"))
            .then(|| url.trim_end_matches('/').to_owned())
    })
}

/// Whether `url` is an absolute http(s) URL.
pub fn is_base_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// Absolute URLs of changed site paths.
pub fn urls(base: Option<&str>, paths: &[&str]) -> Vec<String> {
    let base = base.unwrap_or("").trim_end_matches('/');
    let mut urls = Vec::with_capacity(paths.len() * 2);
    for path in paths {
        urls.push(format!("{base}/{path}"));
        if let Some(dir) = path.strip_suffix("index.html")
            && (dir.is_empty() || dir.ends_with('/'))
        {
            urls.push(format!("{base}/{dir}"));
        }
    }
    urls.sort_unstable();
    urls.dedup();
    urls
}

/// POSTs the purge list to `webhook`, trying three times on transport errors and 5xx.
/// Returns the final HTTP status, or what went wrong.
pub async fn notify(webhook: &str, list: &PurgeList) -> Result<u16, String> {
    super::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("cannot create an HTTP client: {e}"))?;
    let body = serde_json::to_vec(list).unwrap_or_default();
    let mut delay = Duration::from_millis(250);
    let mut last = String::new();
    for attempt in 1..=3 {
        let sent = client
            .post(webhook)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, concat!("aurelio/", env!("CARGO_PKG_VERSION")))
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(r.status().as_u16()),
            Ok(r) if !r.status().is_server_error() => {
                return Err(format!("the webhook `{webhook}` answered {}", r.status()));
            }
            Ok(r) => last = format!("the webhook `{webhook}` answered {}", r.status()),
            Err(e) => last = format!("cannot reach the webhook `{webhook}`: {e}"),
        }
        if attempt < 3 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_pages_are_listed_with_and_without_index_html() {
        let got = urls(
            Some("https://shop.test/"),
            &["index.html", "products/a/index.html", "sitemap.xml"],
        );
        assert_eq!(
            got,
            [
                "https://shop.test/",
                "https://shop.test/index.html",
                "https://shop.test/products/a/",
                "https://shop.test/products/a/index.html",
                "https://shop.test/sitemap.xml",
            ]
        );
        assert_eq!(urls(None, &["404.html"]), ["/404.html"]);
    }

    #[test]
    fn the_base_url_comes_from_robots_txt() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(base_url(dir.path(), None), None);
        std::fs::write(
            dir.path().join("robots.txt"),
            "User-agent: *\n\nSitemap: https://a.test/shop/sitemap.xml\n",
        )
        .expect("write");
        assert_eq!(base_url(dir.path(), None).as_deref(), Some("https://a.test/shop"));
        assert_eq!(base_url(dir.path(), Some("http://b.test/")).as_deref(), Some("http://b.test"));
        assert!(
            is_base_url("https://a.test") && !is_base_url("a.test") && !is_base_url("ftp://a.test")
        );
    }
}
