//! OTLP protobuf export requests, as the receivers get them, decoded and
//! converted to Arrow. The first byte picks the signal. For traces the two
//! paths must agree: the one that converts straight from the bytes (what
//! the receivers use) and the one that decodes with prost first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smolder_common::Table;
use smolder_ingest::ExportRequest;
use smolder_ingest::convert;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let table = Table::ALL[usize::from(pick) % 3];
    let decoded = ExportRequest::decode_protobuf(table, body);
    match &decoded {
        Ok(ExportRequest::Traces(r)) => {
            let via_prost = convert::spans(r);
            let direct = convert::spans_protobuf(body);
            match (via_prost, direct) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.accepted, b.accepted, "accepted spans differ");
                    assert_eq!(a.rejected, b.rejected, "rejected spans differ");
                    assert_eq!(a.batch, b.batch, "converted rows differ");
                }
                (Ok(_), Err(e)) => panic!("prost decodes it, the direct path refuses it: {e}"),
                (Err(_), _) => {}
            }
        }
        Ok(ExportRequest::Logs(r)) => {
            let _ = convert::logs(r);
        }
        Ok(ExportRequest::Metrics(r)) => {
            let _ = convert::metrics(r);
        }
        Err(_) => {
            if table == Table::Spans {
                // Whatever the direct path makes of bytes prost refuses, it
                // must not panic.
                let _ = convert::spans_protobuf(body);
            }
        }
    }
});
