//! An ingester's Arrow Flight service: its buffered rows, for queriers.
//!
//! One call, `DoGet`, whose ticket is a JSON [`BufferRequest`]: the tenant
//! and table, the persisted log position of every writer in the querier's
//! manifest, the columns read and the query's filters as SQL. The answer is
//! the rows of the ingester's buffer after its position there — projected,
//! and filtered by every filter it could parse and evaluate (the rest are
//! left to the querier, which applies them all again) — with the
//! ingester's writer id in the `x-smolder-writer` header. A position older
//! than what the ingester has flushed is refused with `FAILED_PRECONDITION`
//! (the querier's manifest is stale; see the crate documentation).
//!
//! Every call must carry `authorization: Bearer <[cluster] secret>` when one
//! is configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use datafusion::arrow::array::AsArray as _;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use smolder_common::secret::Secret;
use smolder_common::{Table, Tenant};
use smolder_storage::Store;
use tonic::{Request, Response, Status, Streaming};

/// The header of a `DoGet` answer naming the ingester's writer id.
pub const WRITER_HEADER: &str = "x-smolder-writer";

/// What a querier asks an ingester for (the `DoGet` ticket, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferRequest {
    /// Whose rows.
    pub tenant: Tenant,
    /// `spans`, `logs` or `metrics`.
    pub table: String,
    /// The last log record the querier's manifest records as persisted,
    /// per writer id.
    pub positions: BTreeMap<String, u64>,
    /// The columns to send (`None`: all).
    pub columns: Option<Vec<String>>,
    /// The query's filters as SQL expressions over the table's columns.
    pub filters: Vec<String>,
}

/// The Flight service of an ingester.
#[derive(Clone)]
pub struct BufferService {
    store: Arc<Store>,
    secret: Option<Secret>,
    /// Knows smolder's SQL functions, for the pushed-down filters.
    ctx: SessionContext,
}

impl std::fmt::Debug for BufferService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferService")
            .field("writer", &self.store.writer())
            .finish_non_exhaustive()
    }
}

impl BufferService {
    /// The service of `store`'s buffer; calls must carry `secret` if given.
    pub fn new(store: Arc<Store>, secret: Option<Secret>) -> Self {
        Self {
            store,
            secret,
            ctx: smolder_query::expression_context(),
        }
    }

    /// The gRPC service to serve.
    pub fn into_server(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
            // Buffers hold up to a GiB; batches are sent in messages of at
            // most ~2 MiB (the encoder's default), the decoder must take that.
            .max_decoding_message_size(16 << 20)
    }

    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(secret) = &self.secret else {
            return Ok(());
        };
        let sent = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match sent {
            Some(sent)
                if constant_time_eq::constant_time_eq(
                    sent.as_bytes(),
                    secret.expose().as_bytes(),
                ) =>
            {
                Ok(())
            }
            Some(_) => Err(Status::unauthenticated("wrong cluster secret")),
            None => Err(Status::unauthenticated(
                "this ingester's Flight listener needs the cluster secret ([cluster] secret)",
            )),
        }
    }

    /// The rows `request` asks for, projected and filtered.
    fn rows(
        &self,
        request: &BufferRequest,
    ) -> Result<(Vec<RecordBatch>, Arc<datafusion::arrow::datatypes::Schema>), Status> {
        let table = Table::ALL
            .into_iter()
            .find(|t| t.name() == request.table)
            .ok_or_else(|| Status::invalid_argument(format!("no table {:?}", request.table)))?;
        let schema = table.schema();
        let indices = match &request.columns {
            Some(columns) => Some(
                columns
                    .iter()
                    .map(|c| {
                        schema.index_of(c).map_err(|_| {
                            Status::invalid_argument(format!("{table} has no column {c:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let projected = Arc::new(match &indices {
            Some(i) => schema
                .project(i)
                .map_err(|e| Status::internal(e.to_string()))?,
            None => schema.as_ref().clone(),
        });
        let writer = self.store.writer();
        let after = request.positions.get(writer).copied().unwrap_or(0);
        let batches = self
            .store
            .buffered_after(&request.tenant, table, after)
            .map_err(|persisted| {
                Status::failed_precondition(format!(
                    "stale manifest: writer {writer} has persisted its log through record {persisted}, the manifest read says {after}"
                ))
            })?;
        let filters = self.filters(table, &request.filters);
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            let batch = apply(batch, &filters);
            if batch.num_rows() == 0 {
                continue;
            }
            out.push(match &indices {
                Some(i) => batch
                    .project(i)
                    .map_err(|e| Status::internal(e.to_string()))?,
                None => batch,
            });
        }
        Ok((out, projected))
    }

    /// The filters this ingester can evaluate; the others are left to the
    /// querier.
    fn filters(&self, table: Table, texts: &[String]) -> Vec<Arc<dyn PhysicalExpr>> {
        let Ok(schema) = DFSchema::try_from_qualified_schema(table.name(), &table.schema()) else {
            return Vec::new();
        };
        texts
            .iter()
            .filter_map(|text| {
                let parsed = self
                    .ctx
                    .parse_sql_expr(text, &schema)
                    .and_then(|expr| self.ctx.create_physical_expr(expr, &schema));
                match parsed {
                    Ok(expr) => Some(expr),
                    Err(e) => {
                        tracing::debug!(filter = %text, error = %e, "A pushed-down filter is left to the querier.");
                        None
                    }
                }
            })
            .collect()
    }
}

/// The rows of `batch` every filter keeps (a filter that fails on it keeps
/// every row: the querier applies it again and reports the error).
fn apply(mut batch: RecordBatch, filters: &[Arc<dyn PhysicalExpr>]) -> RecordBatch {
    for filter in filters {
        let kept = filter
            .evaluate(&batch)
            .and_then(|v| v.into_array(batch.num_rows()))
            .ok()
            .and_then(|mask| {
                let mask = mask.as_boolean_opt()?.clone();
                filter_record_batch(&batch, &mask).ok()
            });
        if let Some(kept) = kept {
            batch = kept;
        }
    }
    batch
}

type Stream<T> = BoxStream<'static, Result<T, Status>>;

#[tonic::async_trait]
impl FlightService for BufferService {
    type HandshakeStream = Stream<HandshakeResponse>;
    type ListFlightsStream = Stream<FlightInfo>;
    type DoGetStream = Stream<FlightData>;
    type DoPutStream = Stream<PutResult>;
    type DoActionStream = Stream<arrow_flight::Result>;
    type ListActionsStream = Stream<ActionType>;
    type DoExchangeStream = Stream<FlightData>;

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        self.check(&request)?;
        let request: BufferRequest =
            serde_json::from_slice(&request.into_inner().ticket).map_err(|e| {
                Status::invalid_argument(format!("the ticket is not a buffer request: {e}"))
            })?;
        let (batches, schema) = self.rows(&request)?;
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            // The tables' low-cardinality columns are dictionaries: kept so.
            .with_dictionary_handling(DictionaryHandling::Resend)
            .build(futures::stream::iter(batches.into_iter().map(Ok)))
            .map_err(Status::from);
        let mut response = Response::new(stream.boxed());
        if let Ok(writer) = self.store.writer().parse() {
            response.metadata_mut().insert(WRITER_HEADER, writer);
        }
        Ok(response)
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "smolder's Flight service has DoGet only",
        ))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use datafusion::object_store::memory::InMemory;
    use smolder_common::clock::ManualClock;
    use smolder_storage::StoreOptions;
    use smolder_storage::testing::batch;

    use super::*;

    #[tokio::test]
    async fn an_ingester_sends_only_the_columns_read_and_the_rows_the_filters_keep() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            Arc::new(InMemory::new()),
            None,
            dir.path(),
            StoreOptions {
                writer: Some("a".into()),
                ..StoreOptions::default()
            },
            Arc::new(ManualClock::new(1_795_305_600_000_000_000)),
        )
        .await
        .unwrap()
        .0;
        for service in ["checkout", "cart", "checkout"] {
            let window = store.window(Table::Spans);
            let rows = batch(Table::Spans, service, &[1_795_305_599_000_000_000]);
            store
                .append(&Tenant::default(), Table::Spans, window, Bytes::new(), rows)
                .await
                .unwrap();
        }
        let service = BufferService::new(Arc::new(store), None);
        let mut request = BufferRequest {
            tenant: Tenant::default(),
            table: "spans".into(),
            positions: BTreeMap::new(),
            columns: Some(vec!["service_name".into(), "duration_ns".into()]),
            filters: vec![
                "upper(service_name) = 'CHECKOUT'".into(),
                // Not parseable here: left to the querier, rows kept.
                "no_such_function(name)".into(),
            ],
        };
        let (batches, schema) = service.rows(&request).unwrap();
        assert_eq!(schema.fields().len(), 2);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        assert!(batches.iter().all(|b| b.num_columns() == 2));
        // Rows the querier's manifest already has in files are not sent.
        request.positions.insert("a".into(), 2);
        let (batches, _) = service.rows(&request).unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
        request.columns = Some(vec!["nope".into()]);
        assert_eq!(
            service.rows(&request).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
