use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{error_code, TestApp};

both_backends!(
    admin_builds_the_org_tree_and_archived_units_leave_the_public_tree,
    residents_and_staff_cannot_call_admin_endpoints,
    admin_creates_staff_bound_to_a_unit_of_their_level,
    bad_input_gets_clear_errors_and_stores_nothing,
    openapi_document_and_offline_docs_page_are_served,
    admins_manage_categories_and_archived_ones_leave_the_list,
);

async fn admins_manage_categories_and_archived_ones_leave_the_list(app: TestApp) {
    app.seed();
    let (s, list) = app.get("/api/v1/categories", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "环境卫生",
            "违章建筑",
            "社区安全",
            "物业服务",
            "设施维修",
            "邻里纠纷",
            "噪音扰民",
            "其他"
        ]
    );
    let admin = app.login_staff("yc-admin").await;
    let resident = app.login_resident("13800000001").await;
    let (s, _) = app
        .post(
            "/api/v1/categories",
            Some(&resident),
            json!({"code": "parking", "name": "停车管理"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, c) = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"code": "parking", "name": "停车管理", "sort_order": 80}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, v) = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"code": "parking", "name": "重复"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "duplicate_code");
    let (s, v) = app
        .post(
            "/api/v1/categories",
            Some(&admin),
            json!({"code": "Bad Code!", "name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_code");
    let (_, list) = app.get("/api/v1/categories", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(9));
    let (s, _) = app
        .patch(
            &format!("/api/v1/categories/{}", c["id"]),
            Some(&admin),
            json!({"archived": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = app.get("/api/v1/categories", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(8));
    let (s, _) = app
        .patch(
            "/api/v1/categories/424242",
            Some(&admin),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn admin_builds_the_org_tree_and_archived_units_leave_the_public_tree(app: TestApp) {
    app.seed();
    let admin = app.login_staff("yc-admin").await;
    let (s, street) = app
        .post(
            "/api/v1/org/streets",
            Some(&admin),
            json!({"name": "京溪街道", "code": "jx"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{street}");
    assert_eq!(street["code"], "JX");
    let (s, community) = app
        .post(
            "/api/v1/org/communities",
            Some(&admin),
            json!({"name": "京溪社区", "parent_id": street["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, compound) = app
        .post(
            "/api/v1/org/compounds",
            Some(&admin),
            json!({"name": "公安宿舍", "parent_id": community["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, building) = app
        .post(
            "/api/v1/org/buildings",
            Some(&admin),
            json!({"name": "65栋", "parent_id": compound["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(building["parent_id"], compound["id"]);

    // A compound cannot hang directly under a street.
    let (s, v) = app
        .post(
            "/api/v1/org/compounds",
            Some(&admin),
            json!({"name": "错层", "parent_id": street["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "unknown_org_unit");
    // Street codes are unique.
    let (s, v) = app
        .post(
            "/api/v1/org/streets",
            Some(&admin),
            json!({"name": "重复", "code": "JX"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "duplicate_code");

    let (s, tree) = app.get("/api/v1/org/tree", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = tree
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert!(
        names.contains(&"京溪街道") && names.contains(&"云城街道"),
        "{names:?}"
    );
    let jx = tree
        .as_array()
        .expect("a")
        .iter()
        .find(|n| n["code"] == "JX")
        .expect("jx");
    assert_eq!(
        jx["children"][0]["children"][0]["children"][0]["name"],
        "65栋"
    );

    let (s, renamed) = app
        .patch(
            &format!("/api/v1/org/compounds/{}", compound["id"]),
            Some(&admin),
            json!({"name": "公安宿舍大院", "archived": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(renamed["name"], "公安宿舍大院");
    assert_eq!(renamed["archived"], true);
    let (_, tree) = app.get("/api/v1/org/tree", None).await;
    let jx = tree
        .as_array()
        .expect("a")
        .iter()
        .find(|n| n["code"] == "JX")
        .expect("jx");
    assert_eq!(
        jx["children"][0]["children"].as_array().map(Vec::len),
        Some(0)
    );
    let (_, full) = app
        .get("/api/v1/org/tree?include_archived=true", None)
        .await;
    let jx = full
        .as_array()
        .expect("a")
        .iter()
        .find(|n| n["code"] == "JX")
        .expect("jx");
    assert_eq!(jx["children"][0]["children"][0]["archived"], true);

    // The kind in the path must match the unit.
    let (s, _) = app
        .patch(
            &format!("/api/v1/org/streets/{}", compound["id"]),
            Some(&admin),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn residents_and_staff_cannot_call_admin_endpoints(app: TestApp) {
    app.seed();
    let resident = app.login_resident("13800000001").await;
    let staff = app.login_staff("yc-street").await;
    for token in [&resident, &staff] {
        let (s, v) = app.get("/api/v1/users", Some(token)).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&v), "forbidden");
        let (s, _) = app
            .post("/api/v1/users", Some(token), json!({"role": "admin", "username": "evil", "password": "12345678", "display_name": "x"}))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = app
            .post(
                "/api/v1/org/streets",
                Some(token),
                json!({"name": "x", "code": "XX"}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = app
            .patch("/api/v1/users/1", Some(token), json!({"disabled": true}))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = app.get("/api/v1/users", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn admin_creates_staff_bound_to_a_unit_of_their_level(app: TestApp) {
    let seed = app.seed();
    let admin = app.login_staff("yc-admin").await;
    let compound_id = seed["compounds"][1]["id"].clone();
    let community_id = seed["communities"][0]["id"].clone();
    let (s, v) = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"role": "compound_staff", "username": "Hua-Tang", "password": "s3cret-pass", "display_name": "华糖委员",
                   "phone": "13911112222", "email": "ht@example.cn", "org_unit_id": compound_id}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["username"], "hua-tang");
    assert_eq!(v["org_unit"]["id"], compound_id);
    let id = v["id"].as_i64().expect("id");

    // Wrong level: compound staff bound to a community.
    let (s, v) = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"role": "compound_staff", "username": "wrong-level", "password": "s3cret-pass", "display_name": "x", "org_unit_id": community_id}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "unknown_org_unit");
    // Staff without a unit.
    let (s, v) = app
        .post("/api/v1/users", Some(&admin), json!({"role": "street_staff", "username": "nounit", "password": "s3cret-pass", "display_name": "x"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "missing_field");
    // Duplicate username (case-insensitive).
    let (s, v) = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"role": "compound_staff", "username": "HUA-TANG", "password": "s3cret-pass", "display_name": "x", "org_unit_id": compound_id}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "duplicate_username");

    let new_staff = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "hua-tang", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(new_staff.0, StatusCode::OK);

    let (s, page) = app
        .get("/api/v1/users?role=compound_staff&limit=3", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    let cursor = page["next_cursor"].as_i64().expect("more pages");
    let (_, page2) = app
        .get(
            &format!("/api/v1/users?role=compound_staff&limit=100&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        page2["items"].as_array().map(Vec::len),
        Some(4),
        "6 seeded + 1 new = 7"
    );
    assert!(page2["next_cursor"].is_null());

    let (s, v) = app.get("/api/v1/users?q=hua", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["id"], id);

    let (s, v) = app
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            json!({"display_name": "华糖小区委员", "password": "another-pass"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["display_name"], "华糖小区委员");
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "hua-tang", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "hua-tang", "password": "another-pass"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

async fn bad_input_gets_clear_errors_and_stores_nothing(app: TestApp) {
    app.seed();
    let admin = app.login_staff("yc-admin").await;
    let (_, before) = app.get("/api/v1/users?limit=100", Some(&admin)).await;
    let cases = [
        (
            json!({"role": "king", "username": "a1b2c3", "password": "12345678", "display_name": "x"}),
            "invalid_json",
        ),
        (
            json!({"role": "admin", "username": "a1b2c3", "password": "short", "display_name": "x"}),
            "weak_password",
        ),
        (
            json!({"role": "admin", "username": "a b", "password": "12345678", "display_name": "x"}),
            "invalid_username",
        ),
        (
            json!({"role": "admin", "username": "a1b2c3", "password": "12345678", "display_name": ""}),
            "missing_field",
        ),
        (
            json!({"role": "admin", "username": "a1b2c3", "password": "12345678", "display_name": "x", "shoe_size": 42}),
            "invalid_json",
        ),
        (
            json!({"role": "resident", "display_name": "x"}),
            "missing_field",
        ),
        (
            json!({"role": "admin", "username": "a1b2c3", "password": "12345678", "display_name": "x", "email": "nope"}),
            "invalid_email",
        ),
    ];
    for (body, code) in cases {
        let (s, v) = app.post("/api/v1/users", Some(&admin), body.clone()).await;
        assert!(s.is_client_error(), "{body} → {s}");
        assert_eq!(error_code(&v), code, "{body}");
    }
    let resp = app
        .client
        .post(format!("{}/api/v1/users", app.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: serde_json::Value = resp.json().await.expect("json body");
    assert_eq!(error_code(&v), "invalid_json");
    let (s, v) = app.get("/api/v1/users?limit=abc", Some(&admin)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "invalid_query");
    let (s, v) = app.get("/api/v1/users/not-a-number", Some(&admin)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&v), "not_found");
    let (s, v) = app.get("/api/v1/no/such/thing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&v), "not_found");

    let (_, after) = app.get("/api/v1/users?limit=100", Some(&admin)).await;
    assert_eq!(
        before["items"].as_array().map(Vec::len),
        after["items"].as_array().map(Vec::len)
    );
}

async fn openapi_document_and_offline_docs_page_are_served(app: TestApp) {
    let (s, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/otp",
        "/api/v1/org/tree",
        "/api/v1/users",
        "/api/v1/me",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let page = app
        .client
        .get(format!("{}/api/docs/", app.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("cdn") && !html.contains("unpkg"),
        "docs page must not need a CDN"
    );
    // The Swagger UI bundle itself comes from this server.
    let js = app
        .client
        .get(format!("{}/api/docs/swagger-ui-bundle.js", app.base))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.expect("bytes").len() > 100_000);
}
