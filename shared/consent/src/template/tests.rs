//! Tests of the catalog, rendering and variable values.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::catalog::*;
use super::values::*;
use super::PlaceholderKind::{Date, Money, Text, Time, Url};
use super::*;
use crate::sms::{self, Encoding};
use crate::Category;

fn vars(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("test helper takes an object"),
    }
}

fn template(name: &str) -> &'static Template {
    find(name).unwrap()
}

/// Realistic values for every placeholder name used in the catalog.
fn sample(name: &str) -> Value {
    match name {
        "firstName" => json!("Maria"),
        "amount" => json!("412.37"),
        "dueDate" | "paymentDate" => json!("2026-12-03"),
        "endDate" => json!("2026-12-31"),
        "paymentUrl" => json!("https://pay.sunrisemotors.example/p/7Hq2x"),
        "bookingUrl" => json!("https://sunrisemotors.example/book"),
        "offerUrl" => json!("https://sunrisemotors.example/o/winter"),
        "vehicle" => json!("2021 Honda CR-V"),
        "serviceName" => json!("an oil change and tire rotation"),
        "appointmentDate" => json!("2026-12-08"),
        "appointmentTime" => json!("14:30"),
        "offer" => {
            json!("0% APR for 60 months on new 2026 Civics, plus a free first oil change.")
        }
        other => panic!("no sample for {other}"),
    }
}

fn all_samples(t: &Template) -> Map<String, Value> {
    t.placeholder_names()
        .map(|n| (n.to_owned(), sample(n)))
        .collect()
}

fn body_placeholders(body: &str) -> BTreeSet<&str> {
    body.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(n, _)| n))
        .collect()
}

// ---- catalog ---------------------------------------------------------------

#[test]
fn catalog_is_consistent() {
    let mut names = BTreeSet::new();
    for t in catalog() {
        // GIVEN each template THEN its id is unique kebab-case and its title matches
        assert!(names.insert(t.name), "duplicate {}", t.name);
        assert!(
            t.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{}",
            t.name
        );
        assert_eq!(t.title.to_lowercase().replace(' ', "-"), t.name);
        assert!(t.version >= 1);
        // AND it starts with the dealer's name
        assert!(t.body.starts_with("{dealerName}: "), "{}", t.name);
        // AND its body uses exactly its placeholders plus dealerName
        let mut declared: BTreeSet<&str> = t.placeholder_names().collect();
        assert_eq!(
            declared.len(),
            t.placeholders.len(),
            "{} repeats a placeholder",
            t.name
        );
        assert!(!declared.contains(DEALER_NAME));
        declared.insert(DEALER_NAME);
        assert_eq!(body_placeholders(t.body), declared, "{}", t.name);
        // AND it carries opt-out wording
        assert!(t.body.ends_with("Reply STOP to opt out."), "{}", t.name);
    }
    assert_eq!(
        names,
        BTreeSet::from([
            "auto-pay-failure",
            "past-due-alert",
            "text-to-pay-reminder",
            "payment-received",
            "service-reminder",
            "appointment-confirmation",
            "marketing-offer",
        ])
    );
}

#[test]
fn every_marketing_template_carries_stop_wording() {
    let marketing: Vec<_> = catalog()
        .iter()
        .filter(|t| t.category == Category::Marketing)
        .collect();
    assert!(!marketing.is_empty());
    for t in marketing {
        assert!(t.body.contains("Reply STOP to opt out"), "{}", t.name);
    }
}

#[test]
fn categories_are_as_designed() {
    for (name, category) in [
        ("auto-pay-failure", Category::Accounting),
        ("past-due-alert", Category::Accounting),
        ("text-to-pay-reminder", Category::Accounting),
        ("payment-received", Category::Accounting),
        ("service-reminder", Category::Service),
        ("appointment-confirmation", Category::Service),
        ("marketing-offer", Category::Marketing),
    ] {
        assert_eq!(template(name).category, category, "{name}");
    }
    assert!(find("no-such-template").is_none());
}

#[test]
fn text_to_pay_invites_a_pay_reply() {
    let t = template("text-to-pay-reminder");
    assert!(t.body.contains("Reply PAY to pay {amount} now"));
    let r = t.render(&all_samples(t), "Sunrise Motors").unwrap();
    assert_eq!(
        r.body,
        "Sunrise Motors: Hi Maria, your payment of $412.37 is due Dec 3, 2026. \
         Reply PAY to pay $412.37 now. Reply STOP to opt out."
    );
    assert_eq!(r.encoding, Encoding::Gsm7);
    assert_eq!(r.segments, 1);
}

#[test]
fn every_template_renders_short_with_realistic_values() {
    for t in catalog() {
        // GIVEN realistic values WHEN rendered
        let r = t
            .render(&all_samples(t), "Sunrise Motors of Springfield")
            .unwrap();
        // THEN no braces remain, GSM-7, at most 2 segments
        assert!(!r.body.contains(['{', '}']), "{}", r.body);
        assert!(r.body.starts_with("Sunrise Motors of Springfield: "));
        assert_eq!(r.encoding, Encoding::Gsm7, "{}", t.name);
        assert!(r.segments <= 2, "{}: {} segments", t.name, r.segments);
        assert_eq!(r.segments, sms::segments(&r.body));
    }
}

#[test]
fn appointment_confirmation_formats_date_and_time() {
    let t = template("appointment-confirmation");
    let r = t.render(&all_samples(t), "Sunrise Motors").unwrap();
    assert!(
        r.body.contains("confirmed for Dec 8, 2026 at 2:30 PM."),
        "{}",
        r.body
    );
}

#[test]
fn serializes_for_the_catalog_endpoint() {
    let v = serde_json::to_value(template("text-to-pay-reminder")).unwrap();
    assert_eq!(v["name"], "text-to-pay-reminder");
    assert_eq!(v["title"], "Text to Pay Reminder");
    assert_eq!(v["category"], "accounting");
    assert_eq!(
        v["placeholders"][1],
        json!({"name": "amount", "kind": "money"})
    );
    let r = serde_json::to_value(Rendered {
        body: "x".into(),
        encoding: Encoding::Ucs2,
        segments: 1,
    })
    .unwrap();
    assert_eq!(r, json!({"body": "x", "encoding": "ucs2", "segments": 1}));
}

// ---- errors ----------------------------------------------------------------

#[test]
fn reports_every_missing_variable_sorted() {
    // GIVEN only firstName WHEN rendering auto-pay-failure
    let t = template("auto-pay-failure");
    let err = t
        .render(&vars(json!({"firstName": "Maria"})), "Sunrise")
        .unwrap_err();
    // THEN all three others are reported, sorted
    assert_eq!(
        err,
        RenderError::MissingVariables(vec!["amount".into(), "dueDate".into(), "paymentUrl".into()])
    );
    assert_eq!(
        err.to_string(),
        "missing template variables: amount, dueDate, paymentUrl"
    );
}

#[test]
fn null_counts_as_missing_not_empty() {
    let t = template("text-to-pay-reminder");
    let mut v = all_samples(t);
    v.insert("amount".into(), Value::Null);
    assert_eq!(
        t.render(&v, "Sunrise"),
        Err(RenderError::MissingVariables(vec!["amount".into()]))
    );
}

#[test]
fn reports_every_unknown_variable_and_refuses_caller_dealer_name() {
    // GIVEN all variables plus dealerName and a typo
    let t = template("text-to-pay-reminder");
    let mut v = all_samples(t);
    v.insert("dealerName".into(), json!("Evil Motors"));
    v.insert("amout".into(), json!("1.00"));
    // THEN both are unknown, sorted
    let err = t.render(&v, "Sunrise").unwrap_err();
    assert_eq!(
        err,
        RenderError::UnknownVariables(vec!["amout".into(), "dealerName".into()])
    );
    assert!(err
        .to_string()
        .contains("dealerName is filled in by the system"));
}

#[test]
fn invalid_values_name_the_variable_not_the_value() {
    let t = template("text-to-pay-reminder");
    let mut v = all_samples(t);
    v.insert("dueDate".into(), json!("12/03/2026"));
    let err = t.render(&v, "Sunrise").unwrap_err();
    assert!(matches!(&err, RenderError::InvalidVariable { name, .. } if name == "dueDate"));
    assert!(!err.to_string().contains("12/03"));
    assert_eq!(
        err.to_string(),
        "invalid value for template variable dueDate: expected a date as YYYY-MM-DD"
    );
}

#[test]
fn empty_dealer_name_is_refused() {
    let t = template("text-to-pay-reminder");
    assert!(matches!(
        t.render(&all_samples(t), "  "),
        Err(RenderError::InvalidVariable { name, .. }) if name == DEALER_NAME
    ));
}

#[test]
fn too_long_bodies_are_refused() {
    // GIVEN a template with five 200-character text placeholders
    static LONG: Template = Template {
        name: "long",
        title: "Long",
        version: 1,
        category: Category::Service,
        body: "{dealerName}: {a} {b} {c} {d} {e}",
        placeholders: &[
            ph("a", Text),
            ph("b", Text),
            ph("c", Text),
            ph("d", Text),
            ph("e", Text),
        ],
    };
    let filled = |n: usize| -> Map<String, Value> {
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|k| (k.to_string(), json!("x".repeat(n))))
            .collect()
    };
    // WHEN filled to 200 each (1,000+ characters) THEN TooLong
    let err = LONG.render(&filled(200), "D").unwrap_err();
    assert_eq!(err, RenderError::TooLong { max: 918 });
    assert!(err.to_string().contains("918"));
    // WHEN 182 each: 3 + 5*182 + 4 = 917 characters THEN fine, 6 segments
    let ok = LONG.render(&filled(182), "D").unwrap();
    assert_eq!(ok.body.chars().count(), 917);
    assert_eq!(ok.segments, 6);
}

// ---- kinds -----------------------------------------------------------------

fn money(v: Value) -> Result<String, String> {
    format_value(PlaceholderKind::Money, &v)
}

#[test]
fn money_accepts_numbers_and_written_amounts() {
    for (input, expected) in [
        (json!(123.45), "$123.45"),
        (json!(1234), "$1,234.00"),
        (json!(0.5), "$0.50"),
        (json!(0), "$0.00"),
        (json!("123.45"), "$123.45"),
        (json!("$1,234.5"), "$1,234.50"),
        (json!(" $1,234.50 "), "$1,234.50"),
        (json!("1000000"), "$1,000,000.00"),
        (json!("$999,999.99"), "$999,999.99"),
        (json!("007.10"), "$7.10"),
    ] {
        assert_eq!(money(input.clone()).as_deref(), Ok(expected), "{input}");
    }
}

#[test]
fn money_refuses_negative_huge_and_sloppy_amounts() {
    for input in [
        json!(-5),
        json!("-5.00"),
        json!("$-5"),
        json!("12.345"),
        json!(12.345),
        json!("1000000.01"),
        json!(1_000_001),
        json!("99999999999999999999999"),
        json!(1e300),
        json!("1,23"),
        json!("1234,567"),
        json!("12,3456"),
        json!(".50"),
        json!("12."),
        json!("abc"),
        json!("$"),
        json!(""),
        json!("1 000"),
        json!(true),
        json!(["1"]),
    ] {
        assert!(money(input.clone()).is_err(), "{input}");
    }
    assert_eq!(
        money(json!("12.345")),
        Err("at most 2 decimal places".into())
    );
    assert_eq!(money(json!(-1)), Err("must not be negative".into()));
}

#[test]
fn dates_are_strict_and_rendered_unambiguously() {
    let date = |s: &str| format_value(PlaceholderKind::Date, &json!(s));
    assert_eq!(date("2026-12-03").as_deref(), Ok("Dec 3, 2026"));
    assert_eq!(date("2027-01-31").as_deref(), Ok("Jan 31, 2027"));
    for bad in [
        "2026-02-30",
        "12/03/2026",
        "2026-1-3",
        "2026-12-03T00:00",
        "",
        "abcd-ef-gh",
        "+202-12-03",
    ] {
        assert!(date(bad).is_err(), "{bad}");
    }
    assert!(format_value(PlaceholderKind::Date, &json!(20261203)).is_err());
}

#[test]
fn times_are_24_hour_and_rendered_12_hour() {
    let time = |s: &str| format_value(PlaceholderKind::Time, &json!(s));
    assert_eq!(time("14:30").as_deref(), Ok("2:30 PM"));
    assert_eq!(time("00:05").as_deref(), Ok("12:05 AM"));
    assert_eq!(time("12:00").as_deref(), Ok("12:00 PM"));
    assert_eq!(time("09:00").as_deref(), Ok("9:00 AM"));
    for bad in ["24:00", "9:30", "12:60", "2:30 PM", "12-30", "", "+1:30"] {
        assert!(time(bad).is_err(), "{bad}");
    }
}

#[test]
fn urls_must_be_https_short_and_without_spaces() {
    let url = |s: &str| format_value(PlaceholderKind::Url, &json!(s));
    assert_eq!(
        url("https://pay.example.com/p/7Hq2x?a=1").as_deref(),
        Ok("https://pay.example.com/p/7Hq2x?a=1")
    );
    let long = format!("https://example.com/{}", "a".repeat(181));
    assert_eq!(long.len(), 201);
    for bad in [
        "http://example.com",
        "https://",
        "https:///path",
        "https://exa mple.com",
        "https://example.com/\n",
        "https://example.com/{x}",
        "https://exämple.com",
        "ftp://example.com",
        "example.com",
        long.as_str(),
    ] {
        assert!(url(bad).is_err(), "{bad}");
    }
    assert!(url(&long[..200]).is_ok());
}

#[test]
fn text_is_trimmed_and_checked() {
    let text = |v: Value| format_value(PlaceholderKind::Text, &v);
    assert_eq!(text(json!("  Maria ")).as_deref(), Ok("Maria"));
    assert_eq!(text(json!(2021)).as_deref(), Ok("2021"));
    assert_eq!(text(json!("x".repeat(200))).map(|s| s.len()), Ok(200));
    for bad in [
        json!(""),
        json!("   "),
        json!("x".repeat(201)),
        json!("line\nbreak"),
        json!("bell\u{7}"),
        json!("{firstName}"),
        json!(null),
        json!({"a": 1}),
    ] {
        assert!(text(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn substitution_leaves_unknown_braces_alone() {
    let values = [("a", "1".to_owned())];
    assert_eq!(substitute("{a} {b} { {a", &values), "1 {b} { {a");
    assert_eq!(substitute("no braces", &values), "no braces");
}

// ---- properties ------------------------------------------------------------

fn arb_value(kind: PlaceholderKind) -> BoxedStrategy<Value> {
    match kind {
        Text => "[A-Za-z0-9][A-Za-z0-9 ,.'&-]{0,60}"
            .prop_map(Value::from)
            .boxed(),
        Money => prop_oneof![
            (0u64..=MAX_MONEY_CENTS).prop_map(|c| json!(format!("{}.{:02}", c / 100, c % 100))),
            (0u64..=MAX_MONEY_CENTS).prop_map(|c| json!(format_money(c))),
            (0u64..=1_000_000).prop_map(|d| json!(d)),
        ]
        .boxed(),
        Date => (0i64..20_000)
            .prop_map(|d| {
                let date =
                    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Days::new(d as u64);
                json!(date.format("%Y-%m-%d").to_string())
            })
            .boxed(),
        Time => (0u32..24, 0u32..60)
            .prop_map(|(h, m)| json!(format!("{h:02}:{m:02}")))
            .boxed(),
        Url => "https://[a-z]{1,20}\\.example/[A-Za-z0-9/?=&._-]{0,60}"
            .prop_map(Value::from)
            .boxed(),
    }
}

fn arb_valid_case() -> impl Strategy<Value = (usize, Map<String, Value>, String)> {
    (0..catalog().len()).prop_flat_map(|i| {
        let fields: Vec<_> = catalog()[i]
            .placeholders
            .iter()
            .map(|p| arb_value(p.kind).prop_map(move |v| (p.name.to_owned(), v)))
            .collect();
        (Just(i), fields, "[A-Za-z][A-Za-z0-9 &'.-]{0,40}")
            .prop_map(|(i, fields, dealer)| (i, fields.into_iter().collect(), dealer))
    })
}

proptest! {
    #[test]
    fn render_never_panics_on_arbitrary_string_maps(
        i in 0..catalog().len(),
        entries in prop::collection::vec(
            (prop_oneof![
                prop::sample::select(vec![
                    "firstName", "amount", "dueDate", "paymentDate", "endDate", "paymentUrl",
                    "bookingUrl", "offerUrl", "vehicle", "serviceName", "appointmentDate",
                    "appointmentTime", "offer", "dealerName",
                ]).prop_map(str::to_owned),
                "\\PC{0,12}",
            ], "\\PC{0,250}"),
            0..16,
        ),
        dealer in "\\PC{0,60}",
    ) {
        let map: Map<String, Value> = entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let _ = catalog()[i].render(&map, &dealer);
    }

    #[test]
    fn valid_values_render_without_leftover_braces(case in arb_valid_case()) {
        let (i, vars, dealer) = case;
        let t = &catalog()[i];
        let r = t.render(&vars, &dealer);
        prop_assert!(r.is_ok(), "{:?}", r);
        let r = r.unwrap();
        prop_assert!(!r.body.contains('{') && !r.body.contains('}'), "{}", r.body);
        prop_assert!(r.body.starts_with(dealer.trim()));
        prop_assert_eq!(r.segments, sms::segments(&r.body));
        prop_assert_eq!(r.encoding, sms::encoding(&r.body));
    }

    #[test]
    fn money_round_trips_through_its_rendering(cents in 0u64..=MAX_MONEY_CENTS) {
        let shown = format_money(cents);
        prop_assert_eq!(parse_money(&shown), Ok(cents));
    }
}
