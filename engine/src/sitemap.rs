//! `sitemap.xml` (a sitemap index past 50,000 URLs) and `robots.txt`.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// URLs per sitemap file, the protocol's limit.
pub const MAX_URLS: usize = 50_000;
const NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";

/// The sitemap files for `urls` (absolute, in order): one `sitemap.xml`, or an index in
/// `sitemap.xml` pointing at `sitemaps/sitemap-N.xml` files. `absolute` turns a site path
/// into an absolute URL.
pub fn sitemaps(urls: &[String], absolute: impl Fn(&str) -> String) -> Vec<(String, Vec<u8>)> {
    if urls.len() <= MAX_URLS {
        return vec![("sitemap.xml".into(), urlset(urls))];
    }
    let mut files = Vec::new();
    let mut names = Vec::new();
    for (i, chunk) in urls.chunks(MAX_URLS).enumerate() {
        let name = format!("sitemaps/sitemap-{}.xml", i + 1);
        files.push((name.clone(), urlset(chunk)));
        names.push(absolute(&name));
    }
    files.insert(0, ("sitemap.xml".into(), document("sitemapindex", "sitemap", &names)));
    files
}

fn urlset(urls: &[String]) -> Vec<u8> {
    document("urlset", "url", urls)
}

fn document(root: &str, item: &str, locs: &[String]) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::with_capacity(locs.len() * 80 + 200), b' ', 0);
    // Writing to a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w.write_event(Event::Start(BytesStart::new(root).with_attributes([("xmlns", NS)])));
    for loc in locs {
        let _ = w.write_event(Event::Start(BytesStart::new(item)));
        let _ = w.write_event(Event::Start(BytesStart::new("loc")));
        let _ = w.write_event(Event::Text(BytesText::new(loc)));
        let _ = w.write_event(Event::End(BytesEnd::new("loc")));
        let _ = w.write_event(Event::End(BytesEnd::new(item)));
    }
    let _ = w.write_event(Event::End(BytesEnd::new(root)));
    let mut bytes = w.into_inner();
    bytes.push(b'\n');
    bytes
}

/// `robots.txt`: everything allowed but cart and search, and where the sitemap is.
pub fn robots(sitemap_url: &str, root: &str) -> Vec<u8> {
    format!("User-agent: *\nAllow: /\nDisallow: {root}/cart/\nDisallow: {root}/search/\n\nSitemap: {sitemap_url}\n")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sites_get_one_urlset() {
        let files =
            sitemaps(&["https://x.test/a?b=1&c=2".into()], |p| format!("https://x.test/{p}"));
        assert_eq!(files.len(), 1);
        let text = String::from_utf8(files[0].1.clone()).expect("utf-8");
        assert!(text.contains("<loc>https://x.test/a?b=1&amp;c=2</loc>"), "{text}");
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{text}");
    }

    #[test]
    fn large_sites_get_an_index() {
        let urls: Vec<String> = (0..MAX_URLS + 1).map(|i| format!("https://x.test/{i}/")).collect();
        let files = sitemaps(&urls, |p| format!("https://x.test/{p}"));
        assert_eq!(files.len(), 3);
        let index = String::from_utf8(files[0].1.clone()).expect("utf-8");
        assert!(index.contains("<sitemapindex"), "{index}");
        assert!(index.contains("<loc>https://x.test/sitemaps/sitemap-2.xml</loc>"), "{index}");
        let second = String::from_utf8(files[2].1.clone()).expect("utf-8");
        assert_eq!(second.matches("<url>").count(), 1);
    }
}
