//! The current user, from `Authorization: Bearer <jwt>`. What the check needs of the user's row
//! is kept for a moment ([`Accounts`]) and forgotten as soon as the account changes: disabling
//! it, signing out or changing the password (each bumps the user's token generation) stops its
//! access tokens at once on this instance and, through the database's change notifications,
//! on the others within moments.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::{web, FromRequest, HttpRequest};
use diesel::prelude::*;

use crate::auth::tokens::Claims;
use crate::db::models::UserRow;
use crate::db::schema::users;
use crate::domain::role::Role;
use crate::error::AppError;
use crate::kept::{Keeper, Weigh};
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

/// The longest an account read is used (plus `kept::REFRESH_GRACE` while one request reads
/// it again). Every change through the service is announced and ends it at once; this bounds a
/// change nobody announced (another process writing the SQLite file, a missed notification) to
/// a couple of seconds.
pub const KEEP_ACCOUNT: Duration = Duration::from_secs(2);
/// More accounts than this and those read before the last account change are dropped (one
/// entry is ~100 bytes).
const MAX_ACCOUNTS: usize = 20_000;

/// What the check of a token needs of a user's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub role: Role,
    pub org_unit_id: Option<i64>,
    pub display_name: String,
    pub disabled: bool,
    pub token_generation: i64,
}

impl From<UserRow> for Account {
    fn from(row: UserRow) -> Account {
        Account {
            id: row.id,
            role: row.role,
            org_unit_id: row.org_unit_id,
            display_name: row.display_name,
            disabled: row.disabled_at.is_some(),
            token_generation: row.token_generation,
        }
    }
}

impl Account {
    /// The caller, if a token of `claims` may act as this account now.
    pub fn admit(self, claims: &Claims) -> Result<AuthUser, AppError> {
        if self.disabled {
            return Err(AppError::Unauthorized("account_disabled"));
        }
        if self.token_generation != claims.gen {
            // Signed out, password changed or disabled since the token was issued.
            return Err(AppError::Unauthorized("invalid_token"));
        }
        if self.role != claims.role {
            // The role changed since the token was issued: make the client sign in again.
            return Err(AppError::Unauthorized("invalid_token"));
        }
        Ok(AuthUser {
            id: self.id,
            role: self.role,
            org_unit_id: self.org_unit_id,
            display_name: self.display_name,
        })
    }
}

impl Weigh for Account {
    fn weight(&self) -> usize {
        1
    }
}

/// Accounts read at an account generation of the live hub (`Hub::account_generation`): a
/// signed-in user's requests check their token without a database read while no account
/// changed, for at most [`KEEP_ACCOUNT`], at most [`MAX_ACCOUNTS`] of them.
pub type Accounts = Keeper<i64, Account>;

impl Default for Accounts {
    fn default() -> Accounts {
        Keeper::new(KEEP_ACCOUNT, MAX_ACCOUNTS)
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
            // Read before the row: a change committed meanwhile makes it unfit to keep.
            let generation = state.live.account_generation();
            if let Some(account) = state.accounts.get(&id, generation) {
                return account.admit(&claims);
            }
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
            let account = Account::from(row.ok_or(AppError::Unauthorized("invalid_token"))?);
            state.accounts.put(id, generation, account.clone());
            account.admit(&claims)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(gen: i64) -> Account {
        Account {
            id: 7,
            role: Role::CompoundStaff,
            org_unit_id: Some(3),
            display_name: "书记".into(),
            disabled: false,
            token_generation: gen,
        }
    }

    #[test]
    fn an_account_is_kept_until_any_account_changes() {
        let a = Accounts::default();
        assert_eq!(a.get(&7, 1), None);
        a.put(7, 1, account(4));
        assert_eq!(a.get(&7, 1), Some(account(4)));
        assert_eq!(a.get(&8, 1), None);
        assert_eq!(a.get(&7, 2), None, "an account changed since");
    }

    #[test]
    fn admission_follows_the_row() {
        let claims = |gen, role| Claims {
            sub: "7".into(),
            role,
            gen,
            iat: 0,
            exp: 0,
            iss: "huying".into(),
        };
        let ok = account(4)
            .admit(&claims(4, Role::CompoundStaff))
            .expect("admitted");
        assert_eq!((ok.id, ok.org_unit_id), (7, Some(3)));
        assert!(account(5).admit(&claims(4, Role::CompoundStaff)).is_err());
        assert!(account(4).admit(&claims(4, Role::CommunityStaff)).is_err());
        let disabled = Account {
            disabled: true,
            ..account(4)
        };
        assert!(matches!(
            disabled.admit(&claims(4, Role::CompoundStaff)),
            Err(AppError::Unauthorized("account_disabled"))
        ));
    }
}
