//! Every problem a function can answer is a listed problem type (so its `type` URI
//! resolves to a description), with the status the list gives it, and the list follows
//! the one status rule.

use std::path::Path;

use consent_adapters::http::{problem_type, PROBLEM_TYPES};

/// `(slug, status)` of every `Problem::new(StatusCode::X, "slug", ...)` in a source file.
fn problems_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in source.match_indices("Problem::new(") {
        let rest = &source[i + "Problem::new(".len()..];
        let mut parts = rest.splitn(3, ',');
        let status = parts.next().unwrap_or("").trim().to_owned();
        let slug = parts
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"')
            .to_owned();
        out.push((slug, status));
    }
    out
}

#[test]
fn every_problem_answered_is_listed_with_its_status() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("shared/adapters/src/http"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    for function in std::fs::read_dir(root.join("functions")).unwrap() {
        let src = function.unwrap().path().join("src");
        for f in std::fs::read_dir(src).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    let mut seen = 0;
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for (slug, status) in problems_in(&source) {
            if slug.is_empty() || slug.starts_with("slug") {
                continue; // the constructor itself
            }
            let listed = problem_type(&slug).unwrap_or_else(|| {
                panic!("{} answers an unlisted problem {slug:?}", file.display())
            });
            let code: u16 = match status.trim_start_matches("StatusCode::") {
                "BAD_REQUEST" => 400,
                "UNAUTHORIZED" => 401,
                "FORBIDDEN" => 403,
                "NOT_FOUND" => 404,
                "NOT_ACCEPTABLE" => 406,
                "CONFLICT" => 409,
                "GONE" => 410,
                "PAYLOAD_TOO_LARGE" => 413,
                "UNSUPPORTED_MEDIA_TYPE" => 415,
                "UNPROCESSABLE_ENTITY" => 422,
                "PRECONDITION_REQUIRED" => 428,
                "TOO_MANY_REQUESTS" => 429,
                "SERVICE_UNAVAILABLE" => 503,
                other => panic!("{slug}: status {other} is not in the rule"),
            };
            assert_eq!(listed.status, code, "{slug} in {}", file.display());
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} problems found: the scan is broken");
}

#[test]
fn the_list_has_one_entry_per_slug_and_every_entry_a_description() {
    for (i, p) in PROBLEM_TYPES.iter().enumerate() {
        assert!(
            PROBLEM_TYPES[i + 1..].iter().all(|q| q.slug != p.slug),
            "{} twice",
            p.slug
        );
        assert!(
            p.description.len() > 40,
            "{} needs a real description",
            p.slug
        );
        assert!((400..600).contains(&p.status));
    }
}
