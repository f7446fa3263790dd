//! `POST /api/v1/sql`: read-only SQL over the telemetry tables.
//!
//! Request `{"sql": "…"}`. The answer is JSON —
//! `{"columns":[{"name","type"}],"rows":[[…]],"row_count":n,"truncated":bool}`,
//! with `"warnings":[…]` when the answer may miss rows (an ingester down) —
//! or an Arrow IPC stream when the request has
//! `Accept: application/vnd.apache.arrow.stream` (warnings in the
//! `x-smolder-warnings` header). Bad SQL and refused statements
//! are a 400 with DataFusion's message.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use serde::Deserialize;
use serde_json::{Value, json};

use smolder_common::Tenant;
use smolder_common::http::ErrorCode;

use crate::{Error, QueryEngine, QueryOutput};

/// Media type of the Arrow IPC stream format.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Body of `POST /api/v1/sql`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One read-only SQL statement.
    pub sql: String,
}

/// Errors of every API, as HTTP responses (smolder_common::http).
pub use smolder_common::http::ApiError;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Refused(m) => ApiError::invalid(m),
            Error::Query(e) if matches!(e.as_ref(), DataFusionError::Internal(_)) => {
                ApiError::internal("A query", e)
            }
            Error::Query(e) => ApiError::invalid(e.to_string()),
            e @ Error::Timeout(_) => ApiError::new(ErrorCode::Timeout, e.to_string()),
            e @ Error::Busy { .. } => ApiError::new(ErrorCode::ResourceExhausted, e.to_string()),
            e @ (Error::Panicked(_) | Error::Internal(_)) => ApiError::internal("A query", e),
        }
    }
}

/// The handler of `POST /api/v1/sql`; state is the engine.
pub async fn sql(
    State(engine): State<Arc<QueryEngine>>,
    tenant: Tenant,
    admin: Option<axum::Extension<smolder_common::tenant::Administrator>>,
    headers: HeaderMap,
    // A body that is not `{"sql": "…"}` gets the same error shape.
    smolder_common::http::Json(request): smolder_common::http::Json<SqlRequest>,
) -> Result<Response, ApiError> {
    let engine = match admin {
        Some(_) => engine.for_admin(&tenant)?,
        None => engine.for_tenant(&tenant)?,
    };
    answer(&engine, &headers, &request).await
}

async fn answer(
    engine: &QueryEngine,
    headers: &HeaderMap,
    request: &SqlRequest,
) -> Result<Response, ApiError> {
    let output = engine.sql(&request.sql).await?;
    let wants_arrow = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(ARROW_STREAM));
    if wants_arrow {
        let body = to_arrow_ipc(&output)?;
        let mut response = (
            [
                (header::CONTENT_TYPE, ARROW_STREAM.to_string()),
                (
                    "x-smolder-truncated".parse().expect("valid header name"),
                    output.truncated.to_string(),
                ),
            ],
            body,
        )
            .into_response();
        if !output.warnings.is_empty() {
            // One header line; the warnings hold no line breaks.
            let warnings = HeaderValue::from_str(&output.warnings.join("; "))
                .unwrap_or_else(|_| HeaderValue::from_static("unprintable warning"));
            response
                .headers_mut()
                .insert("x-smolder-warnings", warnings);
        }
        return Ok(response);
    }
    Ok(Json(to_json(&output)?).into_response())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal("Encoding an answer", e)
}

fn to_arrow_ipc(output: &QueryOutput) -> Result<Vec<u8>, ApiError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &output.schema).map_err(internal)?;
    for batch in &output.batches {
        writer.write(batch).map_err(internal)?;
    }
    writer.into_inner().map_err(internal)
}

/// Renders a query result in the API's JSON shape.
pub fn to_json(output: &QueryOutput) -> Result<Value, ApiError> {
    let columns: Vec<Value> = output
        .schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    let mut rows = Vec::new();
    for batch in &output.batches {
        rows.extend(batch_rows(batch)?);
    }
    let mut answer = json!({
        "columns": columns,
        "row_count": rows.len(),
        "rows": rows,
        "truncated": output.truncated,
    });
    if !output.warnings.is_empty() {
        answer["warnings"] = json!(output.warnings);
    }
    Ok(answer)
}

/// The rows of a batch as JSON arrays. Columns are renamed to their positions
/// before encoding so that duplicate names (`SELECT a, a`) survive.
fn batch_rows(batch: &RecordBatch) -> Result<Vec<Value>, ApiError> {
    let n = batch.num_columns();
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Field::new(i.to_string(), f.data_type().clone(), true))
        .collect();
    let renamed = RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec())
        .map_err(internal)?;
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    writer.write(&renamed).map_err(internal)?;
    writer.finish().map_err(internal)?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<serde_json::Map<String, Value>> =
        serde_json::from_slice(&bytes).map_err(internal)?;
    Ok(objects
        .into_iter()
        .map(|mut o| {
            Value::Array(
                (0..n)
                    .map(|i| o.remove(&i.to_string()).unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect())
}
