//! Labelled replies: the test tables of the classifier (reused by benchmarks), each
//! holding a rule of `data/reply-rules.tsv` to its non-revocations that share its words.
//! The replies are data, `data/reply-examples.tsv`, read once in file order.

use std::sync::LazyLock;

use super::types::{Language, ReplyKind};
use crate::data::DataError;

static EXAMPLES_TSV: &str = include_str!("../../data/reply-examples.tsv");

/// The two tables of `reply-examples.tsv`, in file order.
struct Tables {
    examples: Vec<(&'static str, ReplyKind)>,
    es_fr: Vec<(&'static str, ReplyKind, Language)>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    tables(EXAMPLES_TSV)
        .unwrap_or_else(|e| panic!("embedded reply-examples.tsv is invalid (a build bug): {e}"))
});

/// Labelled Spanish and French replies, with the language the answer must be in.
/// About half are hard non-revocations: sentences that share a revocation's words.
pub fn labelled_es_fr() -> &'static [(&'static str, ReplyKind, Language)] {
    &TABLES.es_fr
}

/// Labelled, real-world-style replies: the test table, reused by benchmarks.
pub fn labelled_examples() -> &'static [(&'static str, ReplyKind)] {
    &TABLES.examples
}

/// Rows are `table, kind, language, text`; the text is the rest of the line, kept
/// exactly (its spaces are part of the example), so the file is not read with
/// `crate::data::rows`, which trims.
fn tables(text: &'static str) -> Result<Tables, DataError> {
    let mut t = Tables {
        examples: Vec::new(),
        es_fr: Vec::new(),
    };
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut cols = l.splitn(4, '\t');
        let (Some(table), Some(kind), Some(language), Some(body)) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            return Err(DataError::new(line, "expected 4 columns"));
        };
        let kind = kind_named(kind)
            .ok_or_else(|| DataError::new(line, format!("unknown kind {kind:?}")))?;
        match (table, Language::parse(language)) {
            ("examples", None) if language == "-" => t.examples.push((body, kind)),
            ("es-fr", Some(language)) => t.es_fr.push((body, kind, language)),
            _ => {
                return Err(DataError::new(
                    line,
                    format!("unknown table {table:?} or language {language:?}"),
                ))
            }
        }
    }
    Ok(t)
}

/// The kind a row names, by its variant name.
fn kind_named(name: &str) -> Option<ReplyKind> {
    use ReplyKind::*;
    [Agree, OptOut, OptIn, Help, Pay, Confirm, Other]
        .into_iter()
        .find(|k| format!("{k:?}") == name)
}
