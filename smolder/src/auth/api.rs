//! The admin API of tokens (the `admin` scope):
//!
//! * `GET /api/v1/tokens` — every token (never a secret)
//! * `POST /api/v1/tokens` — `{"tenant", "scopes": ["ingest", …], "expires":
//!   "30d"}`; 201 with the token, shown this once
//! * `DELETE /api/v1/tokens/{id}` — revoke
//!
//! An admin of a tenant manages that tenant's tokens; the default tenant's
//! admins (the operator's) manage every tenant's. Another tenant's token is
//! answered as if it did not exist.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::json;
use smolder_common::Tenant;
use smolder_common::clock::{Clock as _, SystemClock};
use smolder_common::http::{ApiError, ErrorCode, Json, Path};

use super::TokenStore;

/// Whether a caller of tenant `caller` manages the tokens of `tenant`.
fn manages(caller: &Tenant, tenant: &Tenant) -> bool {
    caller.is_default() || caller == tenant
}

/// The routes.
pub(crate) fn router(store: Arc<TokenStore>) -> Router {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}", delete(revoke))
        .with_state(store)
}

fn now() -> i64 {
    SystemClock.now_ns()
}

async fn list(State(store): State<Arc<TokenStore>>, caller: Tenant) -> Response {
    let now = now();
    let tokens: Vec<_> = store
        .list()
        .into_iter()
        .filter(|t| manages(&caller, &t.tenant))
        .map(|t| {
            let state = t.state(now);
            json!({ "token": t, "state": state })
        })
        .collect();
    axum::Json(json!({ "tokens": tokens })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    tenant: Tenant,
    scopes: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    expires: Option<std::time::Duration>,
}

async fn create(
    State(store): State<Arc<TokenStore>>,
    caller: Tenant,
    Json(new): Json<NewToken>,
) -> Response {
    if !manages(&caller, &new.tenant) {
        return ApiError::new(
            ErrorCode::PermissionDenied,
            format!("a token of tenant {caller} makes tokens of {caller} only"),
        )
        .with_status(StatusCode::FORBIDDEN)
        .into_response();
    }
    let scopes = match super::parse_scopes(&new.scopes.join(",")) {
        Ok(s) => s,
        Err(e) => return ApiError::invalid(format!("scopes: {e}")).into_response(),
    };
    match store.create(&new.tenant, &scopes, new.expires, now()) {
        Ok((info, token)) => {
            tracing::info!(id = %info.id, tenant = %info.tenant, scopes = ?info.scopes, "Token created.");
            let detail = crate::audit::Detail(format!("token {} for {}", info.id, info.tenant));
            let mut response = (
                StatusCode::CREATED,
                axum::Json(json!({ "token": token, "info": info })),
            )
                .into_response();
            response.extensions_mut().insert(detail);
            response
        }
        Err(e) => ApiError::invalid(e.to_string()).into_response(),
    }
}

async fn revoke(
    State(store): State<Arc<TokenStore>>,
    caller: Tenant,
    Path(id): Path<String>,
) -> Response {
    let theirs = store
        .list()
        .iter()
        .any(|t| t.id == id && !manages(&caller, &t.tenant));
    if theirs {
        return ApiError::not_found(format!("no token {id}")).into_response();
    }
    match store.revoke(&id, now()) {
        Ok(true) => {
            tracing::info!(id = %id, "Token revoked.");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) if store.exists(&id).unwrap_or(false) => {
            ApiError::conflict(format!("token {id} is already revoked")).into_response()
        }
        Ok(false) => ApiError::not_found(format!("no token {id}")).into_response(),
        Err(e) => ApiError::internal("revoking a token", e).into_response(),
    }
}
