//! The reply classifier on hard replies: what people really type on phones
//! (`data/hard-replies.tsv`: misspellings, spaced letters, emoji, English and Spanish
//! mixed, a revocation inside a longer message, the formal words of consent law, and
//! false friends that share revocation words without revoking), each row labelled with
//! its source. Opt-out precision must be 1.000 (no one is unsubscribed who did not ask)
//! and recall at least 0.98 (almost no revocation is missed; what is missed goes to a
//! person, never to silence). Prints precision and recall per language and per kind of
//! difficulty (`make test` shows them).

use std::collections::BTreeMap;

use consent::reply::{classify, ReplyKind};

static SET: &str = include_str!("../data/hard-replies.tsv");

struct Row {
    body: String,
    expected: ReplyKind,
    language: String,
    difficulty: String,
}

fn kind(label: &str) -> ReplyKind {
    match label {
        "opt-out" => ReplyKind::OptOut,
        "agree" => ReplyKind::Agree,
        "opt-in" => ReplyKind::OptIn,
        "help" => ReplyKind::Help,
        "pay" => ReplyKind::Pay,
        "confirm" => ReplyKind::Confirm,
        "other" => ReplyKind::Other,
        other => panic!("unknown label {other:?} in hard-replies.tsv"),
    }
}

fn rows() -> Vec<Row> {
    SET.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1) // the column header
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "five fields: {line:?}");
            Row {
                body: f[0].to_owned(),
                expected: kind(f[1]),
                language: f[2].to_owned(),
                difficulty: f[3].to_owned(),
            }
        })
        .collect()
}

#[derive(Default, Clone, Copy)]
struct Score {
    tp: u32,
    fp: u32,
    fn_: u32,
    rows: u32,
}

impl Score {
    fn add(&mut self, got_opt_out: bool, is_opt_out: bool) {
        self.rows += 1;
        match (got_opt_out, is_opt_out) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }
    fn precision(self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }
    fn recall(self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
    fn line(self, name: &str) -> String {
        format!(
            "  {name:<20} {:>4} rows  precision {:.3}  recall {:.3}  ({} missed, {} false)",
            self.rows,
            self.precision(),
            self.recall(),
            self.fn_,
            self.fp
        )
    }
}

/// The figures, printed: overall, per language and per kind of difficulty, with every
/// reply the engine gets wrong.
fn report() -> (Score, Vec<String>) {
    let rows = rows();
    assert!(rows.len() >= 120, "at least 120 labelled hard replies");
    let mut all = Score::default();
    let mut by_language: BTreeMap<String, Score> = BTreeMap::new();
    let mut by_difficulty: BTreeMap<String, Score> = BTreeMap::new();
    let mut wrong = Vec::new();
    for row in &rows {
        let got = classify(&row.body);
        let (g, e) = (got == ReplyKind::OptOut, row.expected == ReplyKind::OptOut);
        all.add(g, e);
        by_language
            .entry(row.language.clone())
            .or_default()
            .add(g, e);
        by_difficulty
            .entry(row.difficulty.clone())
            .or_default()
            .add(g, e);
        if g != e {
            wrong.push(format!(
                "{:?} ({}, {}): expected {:?}, got {got:?}",
                row.body, row.language, row.difficulty, row.expected
            ));
        }
    }
    println!("hard replies: opt-out precision and recall (goal: precision 1.000, recall 0.98)");
    println!("{}", all.line("all"));
    for (name, s) in &by_language {
        println!("{}", s.line(&format!("language {name}")));
    }
    for (name, s) in &by_difficulty {
        println!("{}", s.line(name));
    }
    (all, wrong)
}

/// `make test` prints the figures (the goal is held by the test below, ignored until the
/// engine reaches it): every row parses, with a known label.
#[test]
fn hard_replies_report() {
    let (all, wrong) = report();
    assert_eq!(all.rows as usize, rows().len());
    println!(
        "  {} misclassified (run the ignored test to list them)",
        wrong.len()
    );
}

#[test]
#[ignore = "issue #25 open: on 2026-12-06 the engine scores precision 0.935, recall 0.574 on this set; run with --ignored to see the figures"]
fn hard_replies_keep_precision_and_reach_recall() {
    let (all, wrong) = report();
    for w in &wrong {
        println!("  misclassified {w}");
    }
    assert_eq!(all.precision(), 1.0, "{wrong:#?}");
    assert!(all.recall() >= 0.98, "{wrong:#?}");
}
