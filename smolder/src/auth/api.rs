//! The admin API of tokens (the `admin` scope):
//!
//! * `GET /api/v1/tokens` — every token (never a secret)
//! * `POST /api/v1/tokens` — `{"tenant", "scopes": ["ingest", …], "expires":
//!   "30d"}`; 201 with the token, shown this once
//! * `DELETE /api/v1/tokens/{id}` — revoke

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::json;
use smolder_common::clock::{Clock as _, SystemClock};
use smolder_common::http::{ApiError, Json, Path};

use super::TokenStore;

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

async fn list(State(store): State<Arc<TokenStore>>) -> Response {
    let now = now();
    let tokens: Vec<_> = store
        .list()
        .into_iter()
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
    #[serde(default = "default_tenant")]
    tenant: String,
    scopes: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    expires: Option<std::time::Duration>,
}

fn default_tenant() -> String {
    "default".into()
}

async fn create(State(store): State<Arc<TokenStore>>, Json(new): Json<NewToken>) -> Response {
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

async fn revoke(State(store): State<Arc<TokenStore>>, Path(id): Path<String>) -> Response {
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
