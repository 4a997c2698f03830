//! The HTTP edge shared by the portal and carrier functions, one idea a file:
//! [`problem`] (RFC 9457 responses and the one mapping from domain errors to statuses),
//! [`catalog`] (every problem type and its page), [`identity`] (the caller from the JWT
//! authorizer's claims), [`request`] (route, JSON body, path parameters, pages) and, for
//! tests, [`samples`] and [`testing`].

pub mod catalog;
pub mod identity;
pub mod problem;
pub mod request;
#[cfg(feature = "test-util")]
pub mod samples;
#[cfg(feature = "test-util")]
pub mod testing;

pub use catalog::{problem_page, problem_type, ProblemType, PROBLEM_TYPES};
pub use identity::{identity, ClaimNames, Identity, DEALER_ADMIN};
pub use problem::{json, problem_base, respond, Problem};
pub use request::{body_bytes, json_body, path_param, route_key, Page, MAX_JSON_BODY};
#[cfg(feature = "test-util")]
pub use samples::{record_sample, write_sample};
