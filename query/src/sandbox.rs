//! The read-only sandbox of the SQL API.
//!
//! Exactly one statement, and only SELECT (with WITH / VALUES / set operations),
//! EXPLAIN of such a query, SHOW and DESCRIBE. DDL, DML, `COPY`, `CREATE EXTERNAL
//! TABLE`, `SET` and everything else are refused with a message naming what was
//! found. Defence in depth: the engine also runs statements with DataFusion's
//! `SQLOptions` denying DDL, DML and statements, and registers no table function
//! or URL table that reads files.

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;

use crate::{Error, Result};

/// Checks that `sql` is exactly one read-only statement.
pub fn check(sql: &str) -> Result<()> {
    let statements = DFParser::parse_sql(sql).map_err(|e| Error::Query(Box::new(e)))?;
    match statements.len() {
        0 => {
            return Err(Error::Refused(
                "the request contains no SQL statement".into(),
            ));
        }
        1 => {}
        n => {
            return Err(Error::Refused(format!(
                "exactly one statement is allowed per request, found {n}"
            )));
        }
    }
    check_statement(&statements[0])
}

fn refuse(what: &str) -> Error {
    Error::Refused(format!(
        "{what} is not allowed: the SQL API is read-only and accepts one SELECT, EXPLAIN, \
         SHOW or DESCRIBE statement"
    ))
}

fn check_statement(statement: &DFStatement) -> Result<()> {
    match statement {
        DFStatement::Statement(s) => check_sql(s),
        DFStatement::Explain(explain) => check_statement(&explain.statement),
        DFStatement::CreateExternalTable(_) => Err(refuse("CREATE EXTERNAL TABLE")),
        DFStatement::CopyTo(_) => Err(refuse("COPY")),
        DFStatement::Reset(_) => Err(refuse("RESET")),
    }
}

fn check_sql(statement: &Statement) -> Result<()> {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ExplainTable { .. } => Ok(()),
        Statement::Explain { statement, .. } => check_sql(statement),
        other => {
            // The statement's own text up to its first space names its kind
            // ("INSERT", "CREATE", "SET" …) without echoing the whole query.
            let text = other.to_string();
            let kind: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(refuse(&kind))
        }
    }
}
