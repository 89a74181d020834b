//! Helpers for app-owned Synapsor writeback handlers.
//!
//! After a person approves a proposal, the runner (or the controller) can hand the change to
//! *your* application instead of writing SQL itself: it sends one signed [`HandlerRequest`] and
//! expects a [`HandlerReceipt`] back. This crate is the handler's side of that contract and
//! the runner's signing side:
//!
//! - [`sign`] / [`SigningKey`]: the `X-Synapsor-Signature` header, `t=<t>,kid=<kid>,v1=<hex>`
//!   with `v1 = HMAC-SHA256(secret, "<t>." + body)`;
//! - [`verify`]: checks the header against a [`KeyRing`] (key ids, for rotation), in constant
//!   time, inside a skew window, and parses the body strictly; [`verify_signature`] does the
//!   signature part alone (event webhooks);
//! - [`ReplayGuard`] / [`SeenKeys`]: one use per idempotency key;
//! - [`check_tenant`], [`check_version`], [`check_patch_allowed`], [`check_patch_within`]:
//!   the guards, re-checked against your own row;
//! - [`HandlerReceipt::applied`], [`HandlerReceipt::conflict`], ...: the answer;
//! - [`schema`]: the published JSON Schemas, generated from [`wire`].
//!
//! What it is **not**: it does not do the write, open a transaction or talk to a database.
//! **Your handler owns the final write.** Inside one database transaction it must lock the row
//! by primary key *and* tenant, re-check the tenant, the expected version and the idempotency
//! key (recorded in your own table, committed with the write), change only the allowed
//! columns, and commit; these helpers only make those checks easy to get right. A request that
//! verifies is an approved *intent*, not permission to skip them.
//!
//! ```
//! use synapsor_handler::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = b"a-secret-of-at-least-thirty-two-bytes!";
//! let keys = KeyRing::single("support-2025-01", secret)?;
//! # let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/request.json"))?;
//! # let header = sign(secret, "support-2025-01", 1_782_205_200, &body);
//! # let (header, now) = (Some(header.as_str()), 1_782_205_230);
//! let seen = SeenKeys::new(); // in production: your receipts table, in the transaction
//! let receipt = match verify(header, &body, &keys, now, DEFAULT_SKEW_SECS) {
//!     Err(e) => e.receipt(), // answer with e.http_status()
//!     Ok(req) => {
//!         // BEGIN; SELECT ... WHERE id = <pk> AND tenant_id = <tenant> FOR UPDATE
//!         let row = serde_json::json!({"tenant_id": "globex", "updated_at": "2025-03-07 10:05:00+00"});
//!         if seen.claim(&req.idempotency_key).is_err() {
//!             HandlerReceipt::already_applied()
//!         } else {
//!             let checked = check_patch_within(&req, &["priority", "status"])
//!                 .and_then(|()| check_tenant(&req, &row["tenant_id"]))
//!                 .and_then(|()| check_version(&req, &row["updated_at"]));
//!             match checked {
//!                 Err(guard) => {
//!                     seen.release(&req.idempotency_key); // ROLLBACK
//!                     guard.receipt()
//!                 }
//!                 Ok(()) => HandlerReceipt::applied(1), // UPDATE ...; COMMIT
//!             }
//!         }
//!     }
//! };
//! assert_eq!(receipt.status, ReceiptStatus::Applied);
//! # Ok(())
//! # }
//! ```

mod error;
pub mod events;
mod guard;
mod receipt;
mod replay;
pub mod schema;
mod signature;
pub mod wire;

pub use error::{GuardError, KeyError, VerifyError};
pub use events::{EVENT_ID_HEADER, EVENT_WEBHOOK_SCHEMA, EventEnvelope, WebhookEvent};
pub use guard::{
    ROW_HASH_COLUMN, check_patch_allowed, check_patch_within, check_tenant, check_version, format_timestamp_micros,
    normalize_timestamp, normalize_version, versions_equal,
};
pub use replay::{ReplayGuard, SeenKeys};
pub use signature::{
    DEFAULT_KEY_ID, KeyRing, MAX_BODY_BYTES, MIN_SECRET_LEN, SignatureHeader, SigningKey, Verified, bearer_matches,
    sign, verify, verify_signature,
};
pub use wire::*;
