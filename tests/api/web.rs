//! The pages as plain HTTP: what is served where, with which headers.

use reqwest::{header, StatusCode};

use crate::helpers::{Backend, TestApp};

#[actix_web::test]
async fn pages_manifest_and_assets_are_served_with_caching_and_csp() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    for (path, marker) in [("/", "呼应"), ("/staff/", "呼应"), ("/dashboard/", "呼应")] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let ct = res.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("csp")
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        let body = res.text().await.expect("body");
        assert!(body.contains(marker), "{path}");
        assert!(
            body.contains("/manifest.webmanifest"),
            "{path} links the manifest"
        );
    }

    let head = app
        .client
        .head(format!("{}/dashboard/", app.base))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::OK);

    // Without the trailing slash the relative links would break: redirect.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (from, to) in [("/staff", "/staff/"), ("/dashboard", "/dashboard/")] {
        let res = no_redirect
            .get(format!("{}{from}", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(res.headers()[header::LOCATION], to);
    }

    let res = app
        .client
        .get(format!("{}/manifest.webmanifest", app.base))
        .send()
        .await
        .expect("manifest");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ct")
        .starts_with("application/manifest+json"));
    let manifest: serde_json::Value = res.json().await.expect("manifest json");
    assert_eq!(manifest["start_url"], "/");
    assert_eq!(manifest["display"], "standalone");
    for icon in manifest["icons"].as_array().expect("icons") {
        let src = icon["src"].as_str().expect("src");
        let res = app
            .client
            .get(format!("{}{src}", app.base))
            .send()
            .await
            .expect("icon");
        assert_eq!(res.status(), StatusCode::OK, "icon {src}");
    }

    // A module is revalidated by ETag: the second fetch costs a 304 and no body.
    let url = format!("{}/static/common/api.js", app.base);
    let res = app.client.get(&url).send().await.expect("js");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ct")
        .contains("javascript"));
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
    let etag = res.headers()[header::ETAG].clone();
    let again = app
        .client
        .get(&url)
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("js again");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.expect("body").is_empty());

    // Gzip for the big ones (ECharts is ~1 MB raw).
    let res = app
        .client
        .get(format!("{}/static/common/api.js", app.base))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("gz");
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
}

#[actix_web::test]
async fn unknown_and_sneaky_asset_paths_are_json_404s() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    for path in [
        "/static/nope.js",
        "/static/../Cargo.toml",
        "/static/common/../../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/",
        "/nope",
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let v: serde_json::Value = res.json().await.expect("json body");
        assert_eq!(v["code"], "not_found", "{path}");
    }
}
