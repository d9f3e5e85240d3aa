//! Why a publish, rollback or listing failed. Every message names the destination or the
//! file it is about.

use std::path::PathBuf;

/// Why a publish failed. Unless the message says otherwise, the live site is the one that
/// was live before, and running the command again completes the work.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The destination URL cannot be used.
    #[error("invalid destination `{url}`: {reason}")]
    Destination {
        /// The URL given.
        url: String,
        /// Why it does not work.
        reason: String,
    },
    /// The directory is not a built site.
    #[error("`{}` is not a built site: {reason}", dir.display())]
    NotASite {
        /// The directory given.
        dir: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A file of the site cannot be read.
    #[error("cannot read `{}`: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file changed after the build wrote the manifest.
    #[error(
        "`{}` does not match `aurelio-manifest.json` (changed after the build?); build the site again",
        path.display()
    )]
    Modified {
        /// The file.
        path: PathBuf,
    },
    /// The bucket does not exist.
    #[error("bucket `{bucket}` does not exist (destination `{url}`); create it first")]
    NoBucket {
        /// The bucket name.
        bucket: String,
        /// The destination.
        url: String,
    },
    /// The store refused the credentials or the access.
    #[error(
        "access to `{url}` was denied while trying to {op} `{key}` ({reason}): check the credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...) and the bucket's permissions"
    )]
    Denied {
        /// The destination.
        url: String,
        /// What was attempted.
        op: &'static str,
        /// The key.
        key: String,
        /// The store's answer, in short.
        reason: String,
        /// The store's error.
        error: Box<object_store::Error>,
    },
    /// A store operation failed (after retries).
    #[error("cannot {op} `{key}` at `{url}`: {reason}")]
    Store {
        /// The destination.
        url: String,
        /// What was attempted.
        op: &'static str,
        /// The key.
        key: String,
        /// The store's answer, in short.
        reason: String,
        /// The store's error.
        error: Box<object_store::Error>,
    },
    /// A file Aurelio keeps in the bucket does not parse.
    #[error("`{key}` at `{url}` is not valid: {reason}")]
    Corrupt {
        /// The destination.
        url: String,
        /// The key.
        key: String,
        /// The parse error.
        reason: String,
    },
    /// Nothing has been published at the destination.
    #[error("nothing is published at `{url}` yet")]
    NothingPublished {
        /// The destination.
        url: String,
    },
    /// No deploy has this id.
    #[error("no deploy `{id}` at `{url}`; `aurelio publish --list --to {url}` lists them")]
    UnknownDeploy {
        /// The id asked for.
        id: String,
        /// The destination.
        url: String,
    },
    /// Several deploys start with this prefix.
    #[error("`{id}` matches several deploys at `{url}`: {}", matches.join(", "))]
    AmbiguousDeploy {
        /// The prefix asked for.
        id: String,
        /// The destination.
        url: String,
        /// The deploys it matches.
        matches: Vec<String>,
    },
    /// A deploy cannot be restored because a stored copy is gone.
    #[error("deploy `{id}` cannot be restored: the copy of `{path}` (`{key}`) is missing")]
    MissingCopy {
        /// The deploy.
        id: String,
        /// The site path.
        path: String,
        /// The missing key.
        key: String,
    },
    /// `--base-url` is not an absolute http(s) URL.
    #[error("invalid base URL `{0}`: it must be absolute, like `https://shop.example.com`")]
    BaseUrl(String),
    /// The async runtime could not start.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(std::io::Error),
    /// The publish was stopped on purpose by `AURELIO_PUBLISH_FAIL_AFTER` (tests).
    #[error("publish interrupted after {0} writes (`AURELIO_PUBLISH_FAIL_AFTER`)")]
    Interrupted(u64),
}

/// What a store error says, in short: the innermost message of its chain, with an S3 or
/// Azure XML error body reduced to its code and message.
pub(crate) fn describe(error: &object_store::Error) -> String {
    let mut inner: &dyn std::error::Error = error;
    while let Some(next) = inner.source() {
        inner = next;
    }
    let text = inner.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_owned())
    };
    match (status(error), tag("Code"), tag("Message")) {
        (Some(status), Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(status), Some(code), None) => format!("HTTP {status} {code}"),
        _ => text.lines().next().unwrap_or_default().to_owned(),
    }
}

/// The HTTP status behind a store error, when there was one.
pub(crate) fn status(error: &object_store::Error) -> Option<u16> {
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if let Some(at) = text.find("status code: ") {
            let digits = text[at + 13..].get(..3)?;
            return digits.parse().ok();
        }
        current = e.source();
    }
    None
}

/// Whether a store error says that the bucket or container does not exist.
pub(crate) fn is_missing_bucket(error: &object_store::Error) -> bool {
    let text = format!("{error}");
    status(error) == Some(404)
        && ["NoSuchBucket", "ContainerNotFound", "bucket does not exist"]
            .iter()
            .any(|s| text.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic { store: "S3", source: text.to_owned().into() }
    }

    #[test]
    fn store_errors_are_reduced_to_status_code_and_message() {
        let e = generic(
            "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>",
        );
        assert_eq!(status(&e), Some(404));
        assert_eq!(describe(&e), "HTTP 404 NoSuchBucket: The specified bucket does not exist");
        assert!(is_missing_bucket(&e));
        let e = generic(
            "Server returned non-2xx status code: 403 Forbidden: <Error><Code>InvalidAccessKeyId</Code></Error>",
        );
        assert_eq!(describe(&e), "HTTP 403 InvalidAccessKeyId");
        assert!(!is_missing_bucket(&e));
        let e = generic("error sending request\nconnection refused");
        assert_eq!((status(&e), describe(&e).as_str()), (None, "error sending request"));
    }
}
