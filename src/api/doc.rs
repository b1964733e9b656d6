//! The OpenAPI document. Operations come with their routes (each module's `configure`); this
//! holds what no route says: the title, the tags, the bearer scheme, schemas that only query
//! parameters name, and the error statuses implied by an operation's shape.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::error::ErrorBody;
use crate::service::stats::{RankSort, RankUnit};
use crate::service::tickets::query::{QueueView, Sort};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huying 呼应 API",
        description = "三级呼叫响应：群众呼、小区党支部应；小区党支部呼、社区党支部应；社区党支部呼、街党工委应。\n\nErrors are JSON `{code, message}` with a stable snake_case `code` and a zh-CN `message`. A documented path asked with a method it does not take answers 405 `method_not_allowed` with `Allow`. Every response carries `X-Request-Id`."
    ),
    // Fields of `IntoParams` structs are `$ref`s that utoipa does not collect on its own.
    components(schemas(
        ErrorBody,
        Sort,
        QueueView,
        RankUnit,
        RankSort,
        crate::service::callbacks::StateFilter
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-in and tokens"),
        (name = "org", description = "Streets, communities, compounds, buildings"),
        (name = "users", description = "Accounts (admin)"),
        (name = "categories", description = "Ticket categories"),
        (name = "tickets", description = "The call and the answer: tickets up the 小区 → 社区 → 街道 chain"),
        (name = "sla", description = "SLA policies and the working calendar"),
        (name = "callbacks", description = "Callbacks (回访) after closures: the queue and each call"),
        (name = "stats", description = "The street committee's dashboard: rates, trends, rankings, exports (docs/metrics.md)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "The zh-CN labels of every closed set of values; the map tile server, if any"),
        (name = "notifications", description = "In-app inbox, notification settings, the outbox (admin), unit robots"),
        (name = "stream", description = "Live updates (Server-Sent Events)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `403` of the routes `AuthUser::require_admin` guards.
#[derive(IntoResponses)]
#[response(status = 403, description = "Admins only")]
pub struct AdminOnly(pub ErrorBody);

/// `413`, `415` and `422` of a `web::Json` body (`api::extractor_configs`).
#[derive(IntoResponses)]
pub enum JsonBody {
    #[response(status = 413, description = "Body over 64 KiB")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "`Content-Type` is not JSON")]
    NotJson(ErrorBody),
    #[response(
        status = 422,
        description = "Not JSON (`Content-Type`), malformed, or a field is invalid"
    )]
    Invalid(ErrorBody),
}

/// `503` of a route that needs a database connection but no sign-in (signed-in routes get it
/// from `ErrorStatuses`).
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "No database connection within `database.pool_timeout_secs`"
)]
pub struct DbBusy(pub ErrorBody);

/// Adds the error statuses an operation's shape implies, where the route did not document
/// them more precisely:
/// - bearer security: `401` (the `AuthUser` extractor) and `503` (it reads the account
///   through the pool);
/// - a path parameter: `404` (`PathConfig` answers an unparsable one with 404 too);
/// - query parameters: `422` (`QueryConfig`);
/// - a request body: `413` (over 64 KiB), `415` (not JSON) and `422`.
///
/// Statuses that depend on what a handler does (403, 409, 413, 429, …) stay with the route.
pub struct ErrorStatuses;

impl Modify for ErrorStatuses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        for (path, item) in openapi.paths.paths.iter_mut() {
            let in_path = path.contains('{');
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let signed_in = op.security.as_ref().is_some_and(|s| s.contains(&bearer));
                let in_query = op
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == ParameterIn::Query);
                let implied = [
                    (
                        signed_in,
                        "401",
                        "Not signed in, token invalid or expired, or account disabled",
                    ),
                    (signed_in, "503", DB_BUSY),
                    (in_path, "404", "Not found, or not visible to the caller"),
                    (in_query, "422", "Invalid query parameter"),
                    (op.request_body.is_some(), "422", "Invalid request body"),
                    (op.request_body.is_some(), "413", "Body over 64 KiB"),
                    (
                        op.request_body.is_some(),
                        "415",
                        "`Content-Type` is not that of the body",
                    ),
                ];
                add_missing(op, &implied);
            }
        }
    }
}

const DB_BUSY: &str = "No database connection within `database.pool_timeout_secs`";

fn add_missing(op: &mut Operation, implied: &[(bool, &str, &str)]) {
    for &(applies, status, description) in implied {
        if applies {
            op.responses
                .responses
                .entry(status.to_string())
                .or_insert_with(|| error_response(description));
        }
    }
}

/// A response whose body is the `{code, message}` error.
fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}
