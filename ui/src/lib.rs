//! smolder's web UI: the pages SREs open in a browser.
//!
//! The UI is a set of plain ES modules (`web/`) that call the JSON API of the
//! same process (`/api/v1/...`); nothing is fetched from the internet. The
//! build script embeds them, with the uPlot charting library from npm, into
//! the binary. Entry point: [`router`], which serves
//!
//! * the assets under `/ui/` (with ETags, revalidated on every load so an
//!   upgrade is picked up at once), and
//! * the page shell `index.html` on every page path (`/`, `/slos/{id}`,
//!   `/explore`, …) so that any view can be linked and reloaded; the page's
//!   state lives in the URL.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Paths that show a page (the shell decides which from the URL).
pub const PAGES: &[&str] = &[
    "/",
    "/slos",
    "/slos/{id}",
    "/explore",
    "/traces",
    "/traces/{id}",
    "/logs",
    "/alerts",
    "/reports",
    "/status",
];

/// Only our own origin: the UI works offline and cannot leak to third parties.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The UI's routes; merge them into the API router.
pub fn router() -> Router {
    let mut router = Router::new().route("/ui/{*path}", get(asset));
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router
}

fn find(path: &str) -> Option<&'static (&'static str, &'static str, &'static str, &'static [u8])> {
    ASSETS.iter().find(|(p, ..)| *p == path)
}

async fn shell(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some((_, content_type, etag, bytes)) = find(path) else {
        return (StatusCode::NOT_FOUND, format!("no UI asset {path:?}\n")).into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ETAG, HeaderValue::from_static(etag));
    // Revalidate every time: a 304 costs a round trip on loopback and an
    // upgraded binary is never shown with stale modules.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == *etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, *bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        let response = router()
            .oneshot(request.body(Body::empty()).expect("a request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (status, headers, body.to_vec())
    }

    #[tokio::test]
    async fn every_page_path_serves_the_shell() {
        for path in [
            "/",
            "/slos",
            "/slos/checkout-availability",
            "/explore",
            "/traces/abc",
            "/reports",
            "/status",
        ] {
            let (status, headers, body) = get(path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            let text = String::from_utf8(body).expect("utf-8");
            assert!(text.contains("/ui/app.js"), "{path} is not the shell");
        }
    }

    #[tokio::test]
    async fn assets_carry_their_type_and_revalidate_by_etag() {
        let (status, headers, body) = get("/ui/vendor/uPlot.esm.js", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            String::from_utf8_lossy(&body).contains("export"),
            "not the ES module"
        );
        let etag = headers[header::ETAG].to_str().expect("ascii").to_string();
        let (status, _, body) = get("/ui/vendor/uPlot.esm.js", Some(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        let (status, ..) = get("/ui/vendor/uPlot.esm.js", Some("\"stale\"")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_assets_are_404() {
        let (status, _, body) = get("/ui/nope.js", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&body).contains("nope.js"));
    }

    #[test]
    fn pages_only_load_our_own_modules() {
        // Every module the shell and the pages import must be embedded:
        // a missing one would be a 404 in the browser.
        for (path, _, _, bytes) in ASSETS
            .iter()
            .filter(|(p, ..)| p.ends_with(".js") && !p.starts_with("vendor/"))
        {
            let text = std::str::from_utf8(bytes).expect("utf-8");
            for line in text
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                let Some(spec) = line.split(['"', '\'']).nth(1) else {
                    continue;
                };
                assert!(
                    spec.starts_with("/ui/"),
                    "{path} imports {spec:?}, not under /ui/"
                );
                assert!(
                    find(&spec["/ui/".len()..]).is_some(),
                    "{path} imports missing {spec}"
                );
            }
        }
    }
}
