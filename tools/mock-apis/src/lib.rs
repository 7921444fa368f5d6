//! Demo downstream APIs for courier: inventory, payment, e-mail and SMS, served by one HTTP server that
//! behaves like real APIs do: idempotency keys, latency, errors, throttling and hangs.
//!
//! The project's tests start it in-process on a free port ([`MockApis::start`] with
//! [`MockApisConfig::default`]) and read what it received without HTTP ([`MockApis::effects`],
//! [`MockApis::stats`], [`MockApis::calls`], [`MockApis::wait_for_effects`], [`MockApis::wait_for_calls`]);
//! the local demo runs the `mock-apis` binary.
//!
//! # Endpoints
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `POST /inventory/reservations` `{"order_id","items":[{"sku","quantity"}]}` | 201 `{"reservation_id","order_id"}` |
//! | `POST /payment/charges` `{"order_id","amount","currency"}` | 201 `{"charge_id","order_id","amount","currency"}` |
//! | `POST /email/messages` `{"to","subject","body"}` | 202 `{"message_id","to","status"}` |
//! | `POST /sms/messages` `{"to","text"}` | 202 `{"message_id","to","status"}` |
//! | `GET /{api}/effects` | the API's [`Effect`]s, in the order they were recorded |
//! | `GET /{api}/calls` | the API's call journal: a [`Call`] per `POST`, in arrival order |
//! | `GET /stats` | [`Stats`]: an [`ApiStats`] per API |
//! | `GET` / `PUT` / `PATCH /admin/faults/{api}`, `GET /admin/faults` | the API's [`Faults`] |
//! | `POST /admin/reset` | 204; forgets effects, keys, calls and counters |
//! | `GET /healthz` | 200 `{"status":"ok"}` |
//!
//! Every `POST` to an API needs an `Idempotency-Key` header and a JSON object body (stored as received);
//! else it is answered 400 with a problem-details body. The first successful call with a key takes effect;
//! a later call with the same key (concurrent ones included) gets the first answer again, marked
//! `Idempotent-Replayed: true`, and counts as a duplicate. Injected failures (see [`Faults`]) are not
//! remembered, so a retry may succeed. Errors are RFC 9457 `application/problem+json`.
//!
//! Every `POST`, whatever its answer, also enters the API's call journal ([`Call`]: key, status, arrival
//! and answer times, body), which tests read to see retries, attempts per key and request rates.
//!
//! # Modules
//!
//! * `api`: [`Api`], the four APIs: names, endpoints, answers, and each effect in words for the log.
//! * `faults`: [`Faults`] (latency and jitter, failures by body text and by attempt per key, 503 / 429 /
//!   hang rates) and the per-request draw.
//! * `store`: effects, remembered answers, attempts per key, the call journal and counters per API
//!   ([`Effect`], [`Call`], [`ApiStats`], [`Stats`]).
//! * `routes`: the axum router and handlers.
//! * `problem`: problem-details error answers.
//! * `clock`: RFC 3339 timestamps.
//! * `server`: [`MockApis`], the running server and its in-process handle.
//!
//! Each effect is logged at `info` level in words, e.g.
//! `inventory: reserved 2 × SKU-1 for order o-123 (key inventory:…)`.

mod api;
mod clock;
mod faults;
mod problem;
mod routes;
mod server;
mod store;

pub use api::{Api, UnknownApi};
pub use faults::{Faults, FaultsPatch, InvalidFaults, parse_rate};
pub use routes::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, MAX_IDEMPOTENCY_KEY_LEN, TRACEPARENT};
pub use server::{DEFAULT_LISTEN, MockApis, MockApisConfig, WaitTimeout};
pub use store::{ApiStats, Call, Effect, Stats};
