//! The current user, from `Authorization: Bearer <jwt>`. The user row is read on every request
//! so that disabling an account, signing out or changing the password (each bumps the user's
//! token generation) stops its access tokens at once.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use diesel::prelude::*;

use crate::db::models::UserRow;
use crate::db::schema::users;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: Role,
    pub org_unit_id: Option<i64>,
    pub display_name: String,
}

impl AuthUser {
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// The token of `Authorization: Bearer <jwt>`, if the request has one.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::Internal(anyhow::anyhow!("no app state")))?;
            let token = token.ok_or(AppError::Unauthorized("unauthorized"))?;
            let claims = state
                .jwt
                .verify(&token, state.clock.now())
                .ok_or(AppError::Unauthorized("invalid_token"))?;
            let id: i64 = claims
                .sub
                .parse()
                .map_err(|_| AppError::Unauthorized("invalid_token"))?;
            let row: Option<UserRow> = state
                .db
                .run(move |c| {
                    Ok(users::table
                        .find(id)
                        .select(UserRow::as_select())
                        .first(c)
                        .optional()?)
                })
                .await?;
            let row = row.ok_or(AppError::Unauthorized("invalid_token"))?;
            if row.disabled_at.is_some() {
                return Err(AppError::Unauthorized("account_disabled"));
            }
            if row.token_generation != claims.gen {
                // Signed out, password changed or disabled since the token was issued.
                return Err(AppError::Unauthorized("invalid_token"));
            }
            let role = row.role;
            if role != claims.role {
                // The role changed since the token was issued: make the client sign in again.
                return Err(AppError::Unauthorized("invalid_token"));
            }
            Ok(AuthUser {
                id: row.id,
                role,
                org_unit_id: row.org_unit_id,
                display_name: row.display_name,
            })
        })
    }
}
