//! Quiet hours in the recipient's local time.
//!
//! The policy comes from three tables embedded at build time and parsed once:
//! `data/nanp-area-codes.tsv` (area code -> country, state or province, IANA time
//! zones), `data/state-texting-rules.tsv` (federal and state windows and caps,
//! each row with its legal source) and `data/state-holidays.tsv` (the holidays of the
//! states whose rows close on them).
//!
//! One file per idea: `numbering.rs` reads the numbering plan (area code -> region and
//! zones), `rules.rs` the state rules (windows, closed days, caps), and `engine.rs`
//! holds the policy that answers for a number and a time ([`QuietHours`]).
//!
//! # Rules
//!
//! * **Time zone.** The contact's own zone when it is known. Otherwise the area
//!   code's zones; when an area code spans several zones (208 Idaho: Boise and Los
//!   Angeles) a text is allowed only when the window holds in *every* one of them.
//! * **Unknown area code** (not a US or Canadian geographic code: Caribbean NANP
//!   members, non-geographic codes): the conservative set Atlantic
//!   (`America/Puerto_Rico`), Eastern (`America/New_York`) and Pacific
//!   (`America/Los_Angeles`) must all be inside the window, which covers every
//!   continental US zone and the Caribbean; in practice 11:00-21:00 Eastern (20:00
//!   in winter). No state row applies, only the federal window.
//! * **Federal window** (the `*` row, 08:00-21:00 every day, 47 CFR 64.1200(c)(1))
//!   applies to every category.
//! * **State windows.** The state is the area code's region (Canadian provinces
//!   have no row, so only the federal window). A state row's window for the day of
//!   the week (weekday, Saturday, Sunday) is intersected with the federal window
//!   and, as the conservative product default ([`StateWindowScope::EveryCategory`]),
//!   applies to every category, even though the statutes target solicitations: a
//!   Florida payment notice at 20:30 waits for 08:00. [`StateWindowScope::RuleCategoryOnly`]
//!   limits state windows to the row's `applies_to` category (marketing), leaving
//!   the others on the federal window.
//! * **Closed days.** A day marked `closed` blocks only the row's `applies_to`
//!   category (marketing in every row): a closed day forbids solicitation, not an
//!   account or service notice, so other categories fall back to the federal
//!   window that day. (Blocking a payment-failure notice for a whole Sunday would
//!   help no one.)
//! * **Holidays.** A row with `holidays = closed` (AL, LA, RI) closes the state's
//!   holidays ([`crate::holidays`], `data/state-holidays.tsv`) like a closed Sunday:
//!   for the row's `applies_to` category only, in the recipient's local date.
//! * **Caps.** `max_per_24h_same_subject` applies only to the row's `applies_to`
//!   category; [`crate::frequency`] applies it over the texts already sent or due.
//!
//! Windows are half-open, `[start, end)`, in whole local minutes: with 08:00-21:00,
//! 08:00:00 and 20:59:59 are allowed, 21:00:00 is not.
//!
//! # DST
//!
//! Local times are computed with the bundled IANA zones ([`crate::zone`]). When a window start does not exist
//! (spring-forward gap) the first instant after the gap is used; when it exists
//! twice (fall-back) the earlier one. [`QuietHours::next_allowed`] looks at window
//! starts only, which is exact as long as no zone changes its UTC offset inside an
//! allowed window; every zone of the table changes at 02:00 local, and a property
//! test checks the search against a minute-by-minute scan. If the search ever found
//! nothing it falls back to that scan, bounded to 14 days.

mod engine;
mod numbering;
mod rules;

pub use crate::data::DataError;
pub use engine::QuietHours;
pub use numbering::{area_codes, area_info, AreaInfo};
pub use rules::{DayWindow, Effective, StateRule, StateWindowScope, Window};

#[cfg(test)]
mod tests;
