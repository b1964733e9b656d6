//! The web pages: resident (`/`), secretaries (`/staff/`) and the street dashboard
//! (`/dashboard/`). They are plain HTML/CSS/JS modules under `web/`, compiled into the binary
//! so that the one file is the whole service; they talk only to the public REST API.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Scripts only from our own origin (no inline script), so an escaped-but-missed title cannot
/// run; ECharts writes inline styles into its tooltips, hence `'unsafe-inline'` for styles.
/// Images from the map tile server too, when one is configured (`map.tile_url`), and from nowhere
/// else outside.
fn page_csp(tile_origin: Option<&str>) -> String {
    let tiles = tile_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' blob: data:{tiles}; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", page().to(resident))
        // The short link in SMS and email notifications; the page routes it by hash.
        .route("/t/{id:[0-9]+}", page().to(resident))
        .route("/staff", page().to(|| redirect("/staff/")))
        .route("/staff/", page().to(staff))
        .route("/dashboard", page().to(|| redirect("/dashboard/")))
        .route("/dashboard/", page().to(dashboard))
        .route("/manifest.webmanifest", page().to(manifest))
        .route("/favicon.ico", page().to(favicon))
        .route("/static/{path:.*}", page().to(asset));
}

/// GET, and HEAD for link checkers and uptime monitors (actix sends no body for HEAD).
fn page() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

async fn resident(req: HttpRequest) -> HttpResponse {
    serve(&req, "resident/index.html")
}

async fn staff(req: HttpRequest) -> HttpResponse {
    serve(&req, "staff/index.html")
}

async fn dashboard(req: HttpRequest) -> HttpResponse {
    serve(&req, "dashboard/index.html")
}

async fn manifest(req: HttpRequest) -> HttpResponse {
    serve(&req, "manifest.webmanifest")
}

async fn favicon(req: HttpRequest) -> HttpResponse {
    serve(&req, "common/icon.svg")
}

async fn asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    // rust-embed only knows the files it holds, but say no to traversal before asking it.
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return not_found();
    }
    serve(&req, &path)
}

async fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, to))
        .finish()
}

fn serve(req: &HttpRequest, path: &str) -> HttpResponse {
    let Some(file) = Assets::get(path) else {
        return not_found();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let is_html = path.ends_with(".html");
    let mime = if path.ends_with(".webmanifest") {
        "application/manifest+json".to_string()
    } else {
        let m = file.metadata.mimetype();
        if m.starts_with("text/") || m.ends_with("javascript") || m.ends_with("json") {
            format!("{m}; charset=utf-8")
        } else {
            m.to_string()
        }
    };
    // Revalidate every time (a 304 costs a few hundred bytes on 3G) so that an upgraded
    // binary never leaves a phone with yesterday's script against today's API.
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if is_html {
        let origin = req
            .app_data::<web::Data<AppState>>()
            .and_then(|s| s.settings.map.tile_origin());
        // The origin was checked at load (an https host name, nothing a header may not hold).
        if let Ok(csp) = HeaderValue::from_str(&page_csp(origin.as_deref())) {
            resp.insert_header((header::CONTENT_SECURITY_POLICY, csp));
        }
    }
    if matches {
        return resp.finish();
    }
    resp.content_type(mime).body(file.data.into_owned())
}

fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::error::AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_its_manifest_are_embedded() {
        for p in [
            "resident/index.html",
            "staff/index.html",
            "dashboard/index.html",
            "manifest.webmanifest",
            "common/icon.svg",
            "common/api.js",
        ] {
            assert!(Assets::get(p).is_some(), "{p} missing from web/");
        }
    }

    #[test]
    fn the_csp_names_the_tile_host_only_when_given() {
        let none = page_csp(None);
        assert!(none.contains("img-src 'self' blob: data:; "), "{none}");
        let some = page_csp(Some("https://t0.tianditu.gov.cn"));
        assert!(
            some.contains("img-src 'self' blob: data: https://t0.tianditu.gov.cn; "),
            "{some}"
        );
        assert!(HeaderValue::from_str(&some).is_ok());
    }

    #[test]
    fn pages_load_no_inline_script() {
        // The CSP forbids inline script; a page that used one would break silently.
        for p in [
            "resident/index.html",
            "staff/index.html",
            "dashboard/index.html",
            "dashboard/report.html",
        ] {
            let f = Assets::get(p).expect("page");
            let html = String::from_utf8_lossy(&f.data);
            for tag in html.split("<script").skip(1) {
                let open = tag.split('>').next().unwrap_or("");
                assert!(open.contains("src="), "{p} has an inline <script>");
            }
            assert!(!html.contains(" onclick="), "{p} has an inline handler");
        }
    }
}
