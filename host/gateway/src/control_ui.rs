//! The control page: the files of `ui/` (plain ES modules, no build step),
//! embedded in the binary and served at `gateway.controlUi.basePath`
//! (default `/`) unless `gateway.controlUi.enabled` is `false`.
//!
//! The page holds no authority: it asks for the gateway token, keeps it in
//! the tab's `sessionStorage`, and calls the control API like the CLI does
//! (same bearer token, same Host and Origin checks). Every file goes out
//! with a Content-Security-Policy that allows only this origin's scripts,
//! styles and API, and no framing.
//!
//! Must not: answer anything but the page's own files, or grant the page
//! anything the control API would not grant a caller with the token.

use chela_core::config::schema::Config;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};

use crate::reply::{full, Reply};

/// The page's files: name below the base path, type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("", "text/html; charset=utf-8", include_bytes!("../../../ui/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../../ui/app.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../../ui/style.css")),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the page is served, when it is: `""` for the root, else `/base`.
pub fn base_path(cfg: &Config) -> Option<String> {
    let ui = cfg.gateway.as_ref().and_then(|g| g.control_ui.as_ref());
    if ui.and_then(|u| u.enabled) == Some(false) {
        return None;
    }
    // An invalid base path is a config error; a config that loaded has a valid one.
    ui.map_or(Ok(String::new()), |u| u.base()).ok()
}

/// The page's file for `path`, if `path` is one (`None`: not the page's).
pub(crate) fn serve(cfg: &Config, method: &Method, path: &str) -> Option<Reply> {
    let base = base_path(cfg)?;
    let rest = path.strip_prefix(base.as_str())?;
    let name = match rest {
        "" | "/" | "/index.html" => "",
        other => other.strip_prefix('/')?,
    };
    let (_, content_type, bytes) = FILES.iter().find(|(n, _, _)| *n == name)?;
    if method != Method::GET && method != Method::HEAD {
        return Some(crate::reply::error(StatusCode::METHOD_NOT_ALLOWED, "the control page answers GET only"));
    }
    // `/ops` → `/ops/`, so the page's relative links resolve under the base.
    if rest.is_empty() && !base.is_empty() {
        let mut r = hyper::Response::new(full(""));
        *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
        r.headers_mut().insert("location", HeaderValue::from_str(&format!("{base}/")).ok()?);
        return Some(r);
    }
    let body = if method == Method::HEAD { Vec::new() } else { bytes.to_vec() };
    let mut r = hyper::Response::new(full(body));
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        chela_core::config::load_str(text, None).unwrap().config
    }

    #[test]
    fn the_page_lives_under_its_base_path_only() {
        let root = cfg("{}");
        assert!(serve(&root, &Method::GET, "/").is_some());
        assert!(serve(&root, &Method::GET, "/app.js").is_some());
        assert!(serve(&root, &Method::GET, "/secrets.json").is_none());
        let ops = cfg("{ gateway: { controlUi: { basePath: '/ops/' } } }");
        assert!(serve(&ops, &Method::GET, "/").is_none());
        assert_eq!(serve(&ops, &Method::GET, "/ops").map(|r| r.status()), Some(StatusCode::PERMANENT_REDIRECT));
        let page = serve(&ops, &Method::GET, "/ops/").expect("served");
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let off = cfg("{ gateway: { controlUi: { enabled: false } } }");
        assert!(serve(&off, &Method::GET, "/").is_none());
        assert!(chela_core::config::load_str("{ gateway: { controlUi: { basePath: '/api' } } }", None)
            .map(|l| chela_core::config::validate::validate(&l, &Default::default()))
            .is_ok_and(|d| d.iter().any(|d| d.path == "gateway.controlUi.basePath")));
    }
}
