//! One behaviour contract for the storage ports, run against the in-memory store
//! (`shared/consent/tests/contract.rs`) and the DynamoDB adapter on the emulator
//! (`tests/tests/contract.rs`). A fake that allows what DynamoDB refuses, or the
//! reverse, fails here: conditions, conflicts, indexes, pagination and expiry.
//!
//! Each check takes the store and a [`Ctx`] naming a dealer of its own, so checks run
//! in parallel on one table. `store_contract!` turns the list into tests.
//!
//! `support.rs` holds what every check shares (the [`Store`] they run against, [`Ctx`],
//! fixtures and helpers), this file the macro; the checks live one file per aggregate, named
//! as the ports' (`src/ports/`): `dealers`, `contacts`, `ledger`, `pending`, `limits`,
//! `messages`, `claims` (the delivery claim of `ports/messages.rs`), `inbound`, `work`.

mod claims;
mod contacts;
mod dealers;
mod inbound;
mod ledger;
mod limits;
mod messages;
mod pending;
mod support;
mod work;

pub use claims::{
    claims_check_the_stored_message, claims_stop_at_a_deleted_contact,
    claims_stop_when_the_dealer_changed_its_number, opt_outs_stop_claims_but_not_replies,
};
pub use contacts::{
    a_deleted_contact_leaves_its_ledger, contact_edits_from_one_read_conflict, lists_page_in_order,
};
pub use dealers::{
    automations_are_per_dealer_and_event_type, templates_change_from_the_version_read,
};
pub use inbound::{
    a_pay_request_is_confirmed_once, a_replys_consent_change_carries_its_acted_mark_once,
    conversations_interleave_both_directions, inbound_ids_never_expire,
};
pub use ledger::{a_long_ledger_comes_back_whole, the_ledger_export_pages_a_period_of_one_dealer};
pub use limits::rate_limits_take_units_within_the_window_and_never_pass_it_in_parallel;
pub use messages::{
    cap_books_move_on_from_the_version_read, expired_idempotency_keys_are_absent_and_free,
    latest_messages_are_noted_per_number_and_kind_and_read_back_at_once,
    queued_messages_are_indexed_for_requeue,
};
pub use pending::{
    pending_requests_are_made_once_and_a_stale_code_voids_nothing,
    resends_keep_tries_and_void_takes_the_same_request,
    tries_are_taken_at_most_five_times_in_parallel,
};
pub use work::{open_counts_count_every_item, work_items_are_added_once_per_id};

#[cfg(test)]
pub(crate) use support::sample_message;
pub use support::{eventually, Ctx, Store};

/// One test per check: `store_contract!(make)` where `make(name)` is an async fn
/// returning `(store, Ctx)` for a check named `name`.
#[macro_export]
macro_rules! store_contract {
    ($make:path) => {
        $crate::store_contract!(@each $make;
            queued_messages_are_indexed_for_requeue,
            a_long_ledger_comes_back_whole,
            the_ledger_export_pages_a_period_of_one_dealer,
            open_counts_count_every_item,
            contact_edits_from_one_read_conflict,
            a_deleted_contact_leaves_its_ledger,
            conversations_interleave_both_directions,
            lists_page_in_order,
            templates_change_from_the_version_read,
            automations_are_per_dealer_and_event_type,
            expired_idempotency_keys_are_absent_and_free,
            tries_are_taken_at_most_five_times_in_parallel,
            pending_requests_are_made_once_and_a_stale_code_voids_nothing,
            resends_keep_tries_and_void_takes_the_same_request,
            inbound_ids_never_expire,
            a_replys_consent_change_carries_its_acted_mark_once,
            a_pay_request_is_confirmed_once,
            latest_messages_are_noted_per_number_and_kind_and_read_back_at_once,
            work_items_are_added_once_per_id,
            claims_check_the_stored_message,
            opt_outs_stop_claims_but_not_replies,
            claims_stop_at_a_deleted_contact,
            claims_stop_when_the_dealer_changed_its_number,
            cap_books_move_on_from_the_version_read,
            rate_limits_take_units_within_the_window_and_never_pass_it_in_parallel);
    };
    (@each $make:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (store, ctx) = $make(stringify!($check)).await;
                $crate::contract::$check(&store, &ctx).await;
            }
        )*
    };
}
