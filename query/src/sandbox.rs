//! The read-only sandbox of the SQL API, and the size limits of every
//! statement or expression that reaches the planner.
//!
//! Exactly one statement, and only SELECT (with WITH / VALUES / set operations),
//! EXPLAIN of such a query, SHOW and DESCRIBE. DDL, DML, `COPY`, `CREATE EXTERNAL
//! TABLE`, `SET` and everything else are refused with a message naming what was
//! found. Defence in depth: the engine also runs statements with DataFusion's
//! `SQLOptions` denying DDL, DML and statements, and registers no table function
//! or URL table that reads files.
//!
//! The planner and optimizer recurse over the expression tree: a 4 KB
//! `SELECT 1+1+…+1` is a tree 2,000 levels deep. Statements are therefore
//! refused — before planning, with a 400 — when their text is longer than
//! [`Limits::max_statement_bytes`] or an expression (or a chain of set
//! operations) nests deeper than [`Limits::max_expr_depth`]. The parser
//! itself only recurses on parentheses and prefix operators, which its own
//! recursion limit bounds; the tree it builds from a statement within the
//! size limit is dropped within a query thread's stack
//! ([`crate::executor::QUERY_STACK_BYTES`]).

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::{Error, Result};

/// How large a statement or expression may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of SQL text.
    pub max_statement_bytes: usize,
    /// Nesting of expressions, subqueries and set operations.
    pub max_expr_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_statement_bytes: 256 << 10,
            max_expr_depth: 500,
        }
    }
}

/// Checks that `sql` is exactly one read-only statement within `limits`.
pub fn check(sql: &str, limits: Limits) -> Result<()> {
    check_size(sql, "statement", limits)?;
    check_tokens(sql)?;
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
    check_statement(&statements[0], limits)
}

/// Checks that `expr` is one SQL expression without subqueries, within
/// `limits` (the filters, values and groups of SLO definitions).
pub fn check_expression(expr: &str, limits: Limits) -> Result<()> {
    check_size(expr, "expression", limits)?;
    check_tokens(expr)?;
    let mut parser = Parser::new(&GenericDialect {})
        .try_with_sql(expr)
        .map_err(|e| Error::Refused(e.to_string()))?;
    let parsed = parser
        .parse_expr()
        .map_err(|e| Error::Refused(e.to_string()))?;
    if parser.peek_token().token != Token::EOF {
        return Err(Error::Refused(format!(
            "{expr:?} is more than one expression (unexpected {})",
            parser.peek_token().token
        )));
    }
    let mut depth = Depth::new(limits.max_expr_depth);
    if let ControlFlow::Break(found) = parsed.visit(&mut depth) {
        return Err(match found {
            Found::Subquery => Error::Refused(format!("{expr:?}: subqueries are not allowed here")),
            Found::TooDeep => too_deep(limits),
        });
    }
    Ok(())
}

/// Names joined by dots (`catalog.schema.table.column`, struct fields) at
/// most; real statements use four or five.
const MAX_COMPOUND_PARTS: usize = 10;

/// Refuses, before it is parsed, text that makes sqlparser backtrack
/// exponentially: square brackets that do not pair up, and long chains of
/// dotted names (a subscript it cannot read after `a.b.c…` is retried
/// another way at every dot — about twice the time per name). The
/// `sql_sandbox` fuzz target found 186 bytes that took 100 s of CPU, and
/// 150 that took 37 s — time no query timeout takes back, as parsing does
/// not yield. Neither is ever needed by a real statement, and both are
/// counted on the tokens in linear time. (Text that does not tokenize is
/// left to the parser, which says why.)
fn check_tokens(text: &str) -> Result<()> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, text).tokenize() else {
        return Ok(());
    };
    // Names in the dotted chain at each bracket depth: what is inside a
    // subscript does not end the chain around it (`a.b[c].d` is 3 parts).
    let mut chains = vec![0usize];
    let mut after_dot = false;
    for token in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
        let parts = match token {
            Token::LBracket => {
                chains.push(0);
                None
            }
            Token::RBracket if chains.len() == 1 => return Err(unpaired()),
            Token::RBracket => {
                chains.pop();
                None
            }
            Token::Word(_) if after_dot => Some(chains.last().copied().unwrap_or(0) + 1),
            Token::Word(_) => Some(1),
            Token::Period | Token::Number(..) | Token::SingleQuotedString(_) => None,
            _ => Some(0),
        };
        if let (Some(parts), Some(top)) = (parts, chains.last_mut()) {
            if parts > MAX_COMPOUND_PARTS {
                return Err(Error::Refused(format!(
                    "a name of more than {MAX_COMPOUND_PARTS} parts joined by dots"
                )));
            }
            *top = parts;
        }
        after_dot = matches!(token, Token::Period);
    }
    if chains.len() == 1 {
        Ok(())
    } else {
        Err(unpaired())
    }
}

fn unpaired() -> Error {
    Error::Refused("the square brackets [ ] of the statement do not pair up".into())
}

fn check_size(text: &str, what: &str, limits: Limits) -> Result<()> {
    if text.len() > limits.max_statement_bytes {
        return Err(Error::Refused(format!(
            "the {what} is {} bytes long; at most {} are accepted",
            text.len(),
            limits.max_statement_bytes
        )));
    }
    Ok(())
}

fn too_deep(limits: Limits) -> Error {
    Error::Refused(format!(
        "the statement nests more than {} levels deep (expressions, subqueries or set \
         operations); split it or write it with IN (…) or CASE",
        limits.max_expr_depth
    ))
}

/// What stopped a visit.
enum Found {
    TooDeep,
    /// A subquery where none may be (expressions only).
    Subquery,
}

/// Measures nesting as it visits; stops as soon as it passes the limit, so
/// the visit itself never recurses deeper than that.
struct Depth {
    depth: usize,
    max: usize,
    /// Whether subqueries are refused.
    expression_only: bool,
}

impl Depth {
    fn new(max: usize) -> Self {
        Self {
            depth: 0,
            max,
            expression_only: true,
        }
    }

    fn enter(&mut self, levels: usize) -> ControlFlow<Found> {
        self.depth += levels;
        if self.depth > self.max {
            ControlFlow::Break(Found::TooDeep)
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Nesting of set operations in a query's body, counted without recursion
/// (a chain of 5,000 `UNION ALL` is as deep as it is long).
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(body, 0_usize)];
    while let Some((expr, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = expr {
            stack.push((left, depth + 1));
            stack.push((right, depth + 1));
        }
    }
    deepest
}

impl Visitor for Depth {
    type Break = Found;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Found> {
        if self.expression_only {
            return ControlFlow::Break(Found::Subquery);
        }
        let levels = 1 + set_operation_depth(&query.body);
        self.enter(levels)?;
        // The set operations' depth counts while inside this query only.
        self.depth -= levels - 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<Found> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Found> {
        if self.expression_only
            && matches!(
                expr,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
            )
        {
            return ControlFlow::Break(Found::Subquery);
        }
        self.enter(1)
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<Found> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

fn refuse(what: &str) -> Error {
    Error::Refused(format!(
        "{what} is not allowed: the SQL API is read-only and accepts one SELECT, EXPLAIN, \
         SHOW or DESCRIBE statement"
    ))
}

fn check_statement(statement: &DFStatement, limits: Limits) -> Result<()> {
    match statement {
        DFStatement::Statement(s) => check_sql(s, limits),
        DFStatement::Explain(explain) => check_statement(&explain.statement, limits),
        DFStatement::CreateExternalTable(_) => Err(refuse("CREATE EXTERNAL TABLE")),
        DFStatement::CopyTo(_) => Err(refuse("COPY")),
        DFStatement::Reset(_) => Err(refuse("RESET")),
    }
}

fn check_sql(statement: &Statement, limits: Limits) -> Result<()> {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ExplainTable { .. } => {
            let mut depth = Depth {
                expression_only: false,
                ..Depth::new(limits.max_expr_depth)
            };
            match statement.visit(&mut depth) {
                ControlFlow::Break(_) => Err(too_deep(limits)),
                ControlFlow::Continue(()) => Ok(()),
            }
        }
        Statement::Explain { statement, .. } => check_sql(statement, limits),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `sql_sandbox` fuzz target (fuzz/): parsing this took
    /// sqlparser 100 s of CPU.
    #[test]
    fn unpaired_square_brackets_are_refused_before_the_parser_sees_them() {
        let slow = "SELECT a.ta.ta.ta.ta.tatu[s_3OIs_3O$.ta.ta.ta.tatu[a/tt.ata.tatu[s_3O$.ta.ta.\
                    ta.tatu[s_a.ta.ta.ta.ta.tatu[s_3OIa/tt.ata.t3OIa/tt.ata.tatu[s_4O$sscins.\
                    tatu[s_3OIa/tt.ata.[s_0]as";
        let refused = check(slow, Limits::default()).unwrap_err();
        assert!(refused.to_string().contains("do not pair up"), "{refused}");
        assert!(check("SELECT 1]", Limits::default()).is_err());
        assert!(check_expression("attributes['a'", Limits::default()).is_err());
        // Subscripts that pair up are fine, and a bracket in a string is
        // not a bracket.
        check(
            "SELECT attributes['http.route'], '[' FROM spans",
            Limits::default(),
        )
        .unwrap();
        check_expression("attributes['k'] = ']'", Limits::default()).unwrap();
        // Found next: 150 bytes with paired brackets that took 37 s.
        let slow = "SELECT a.ta.stautta.stautta.sttt.sttta.s.st.statu[s_66].ta.ttta.s.st.statu[s_66]\
                    .ta.stautta.stautta.ststautta.stautta.sttt.sttta.s.st.stat[66s]u_!=ECT0a.ta.\
                    staut=#atitEas";
        let refused = check(slow, Limits::default()).unwrap_err();
        assert!(
            refused.to_string().contains("more than 10 parts"),
            "{refused}"
        );
        // And then 164 bytes that took 11 s: the chain goes on through
        // subscripts holding names.
        let slow = "SET ''=in(((((WITH E( SELECT a.ta.stautta.stauttta.sttt.sttta.s.st.statu[s_66].\
                    ta.stautta.stauta.s.st.statu[s_66].ta.stautta.stautta.sttt.sttta.s.st..staut=\
                    #atitEas";
        let refused = check(slow, Limits::default()).unwrap_err();
        assert!(
            refused.to_string().contains("more than 10 parts"),
            "{refused}"
        );
        // What real statements write is fine.
        check(
            "SELECT s.events[1].name, smolder.public.spans.trace_id FROM smolder.public.spans s",
            Limits::default(),
        )
        .unwrap();
    }

    fn chain(term: &str, op: &str, n: usize) -> String {
        vec![term; n].join(op)
    }

    /// Runs `f` on a thread with a query thread's stack: the trees of these
    /// statements are deeper than a test thread's stack can drop.
    fn on_query_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(crate::executor::QUERY_STACK_BYTES)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn long_operator_chains_are_refused_before_planning() {
        on_query_stack(long_chains);
    }

    fn long_chains() {
        let limits = Limits::default();
        for sql in [
            format!("SELECT {}", chain("1", "+", 2_000)),
            format!("SELECT 1 WHERE {}", chain("true", " OR ", 2_000)),
            format!("SELECT 1 WHERE true{}", " AND true".repeat(2_000)),
            chain("SELECT 1", " UNION ALL ", 5_000),
        ] {
            let err = check(&sql, limits).unwrap_err();
            assert!(err.to_string().contains("levels deep"), "{err}");
        }
    }

    #[test]
    fn statements_within_the_limits_pass() {
        let limits = Limits::default();
        check(&format!("SELECT {}", chain("1", "+", 400)), limits).unwrap();
        check(&chain("SELECT 1", " UNION ALL ", 400), limits).unwrap();
        check(
            "SELECT (SELECT max(x) FROM (SELECT 1 AS x)) + 1 WHERE 1 IN (SELECT 1)",
            limits,
        )
        .unwrap();
    }

    #[test]
    fn a_statement_longer_than_the_limit_is_refused_by_its_size() {
        let limits = Limits {
            max_statement_bytes: 100,
            ..Limits::default()
        };
        let err = check(&format!("SELECT '{}'", "x".repeat(200)), limits).unwrap_err();
        assert!(err.to_string().contains("at most 100"), "{err}");
    }

    #[test]
    fn expressions_refuse_subqueries_and_depth() {
        on_query_stack(expressions);
    }

    fn expressions() {
        let limits = Limits::default();
        check_expression("status_code = 'ERROR' AND duration_ns > 5", limits).unwrap();
        let err = check_expression("x IN (SELECT 1)", limits).unwrap_err();
        assert!(err.to_string().contains("subqueries"), "{err}");
        let err = check_expression(&chain("a = 1", " OR ", 2_000), limits).unwrap_err();
        assert!(err.to_string().contains("levels deep"), "{err}");
        let err = check_expression("a = 1; DROP TABLE spans", limits).unwrap_err();
        assert!(
            err.to_string().contains("more than one expression"),
            "{err}"
        );
    }
}
