//! Demo downstream APIs for courier, served by one HTTP server that behaves like real APIs do: idempotency
//! keys, business answers (declined charges, unknown SKUs, releases of reservations), latency, errors,
//! throttling, hangs and connection resets.
//!
//! The project's tests start it in-process on a free port ([`MockApis::start`] with
//! [`MockApisConfig::default`]), set its faults ([`MockApis::set_faults`]) and read what it received without
//! HTTP ([`MockApis::effects`], [`MockApis::declines`], [`MockApis::stats`], [`MockApis::calls`],
//! [`MockApis::wait_for_effects`], [`MockApis::wait_for_calls`], [`MockApis::wait_for_stats`]); the local
//! demo runs the `mock-apis` binary and reads `/{api}/effects`, `/payment/declines` and `/stats`.
//!
//! # Endpoints
//!
//! Every API ([`Api`]) is one entry of a table (name, base path, endpoint, business rule, log line), from
//! which the routes, counters, effects and faults follow:
//!
//! | API | Endpoint | Answer |
//! |---|---|---|
//! | `inventory` | `POST /inventory/reservations` `{"order_id","items":[{"sku","quantity"}]}` | 201 `{"reservation_id","order_id"}`; 409 `{"error":"unknown_sku","sku"}` |
//! | `inventory_release` | `POST /inventory/reservations/{order_id}/release` `{"order_id"?,"reason"?}` (`{}` will do) | 200 `{"order_id","status":"released"}` or `"already_released"`; 404 `{"error":"reservation_not_found","order_id"}` |
//! | `payment` | `POST /payment/charges` `{"order_id","amount","currency"}` | 201 `{"charge_id","order_id","amount","currency"}`; 402 `{"error":"card_declined","decline_reason","order_id"}` |
//! | `email` | `POST /email/messages` `{"to","subject","body"}` (or a CloudEvent with `data.email`) | 202 `{"message_id","to","status"}` |
//! | `sms` | `POST /sms/messages` `{"to","text"}` | 202 `{"message_id","to","status"}` |
//! | `shipping` | `POST /shipping/labels` `{"order_id","address":{"city",…}}` | 201 `{"label_id","order_id","tracking_number":"TRK-…"}` |
//! | `auth` | `POST /auth/users` `{"user_id","email"}`, or a CloudEvent with them in `data` | 201 `{"account_id","user_id"}` |
//!
//! and besides:
//!
//! | Endpoint | Answer |
//! |---|---|
//! | `GET /{api}/effects` | the API's [`Effect`]s, in the order they were recorded |
//! | `GET /{api}/declines` | the API's declined requests (as [`Effect`]s), in the order they were recorded |
//! | `GET /stats` | an [`ApiStats`] per API name |
//! | `POST /oauth2/token` `grant_type=client_credentials` (HTTP basic client auth) | 200 `{"access_token","token_type","expires_in"}`; 401 `{"error":"invalid_client"}` (see [`MockApis::set_oauth2_client`]) |
//! | `GET /healthz` | 200 `{"status":"ok"}` |
//!
//! `{api}` is an [`Api`] name. The release of a reservation is an API of its own,
//! [`Api::InventoryRelease`] (`inventory_release`: own counters in `/stats`, effects, calls and faults)
//! although its endpoint lies under the inventory API's base URL.
//!
//! Every `POST` to an API needs an `Idempotency-Key` header and a JSON object body (stored as received);
//! else it is answered 400 with a problem-details body. The first call with a key that is answered
//! (neither failed by fault injection nor refused by a business rule) is remembered; a later call with
//! the same key (concurrent ones included) gets the first answer again, marked `Idempotent-Replayed:
//! true`, and counts as a duplicate. Injected failures (see [`Faults`]) are not remembered, so a retry
//! may succeed. Injected errors are RFC 9457 `application/problem+json`; business answers are plain JSON.
//!
//! # Business rules
//!
//! * **Declined charge**: a charge whose `amount` (a JSON integer, in minor units) ends in
//!   [`DECLINED_AMOUNT_SUFFIX`] (`amount % 100 == 13`, e.g. `1213`; see [`is_declined_amount`]) is
//!   answered 402 `card_declined` / `insufficient_funds`. Remembered under its key like a success (a
//!   replay gets the same 402 and counts as a duplicate). It is not an effect: it is listed by
//!   [`MockApis::declines`] (`GET /payment/declines`) and counted in [`ApiStats::declines`].
//! * **Unknown SKU**: a reservation with an item whose `sku` starts with [`UNKNOWN_SKU_PREFIX`] is
//!   answered 409 `unknown_sku`: no effect, not remembered (a retry gets 409 again), counted in
//!   [`ApiStats::refused`].
//! * **Release** of the reservation of an order (matched on the `order_id` of the inventory effects):
//!   200 `released` and an effect of [`Api::InventoryRelease`] when a reservation is held; 404
//!   `reservation_not_found` when the order has none (no effect, not remembered, counted in
//!   [`ApiStats::refused`]); 200 `already_released` without a second effect when a release with a *new*
//!   key comes for an order already released (remembered under that key). The path's order id is added
//!   to the stored body when the body leaves `order_id` out; a body naming another order is refused 400.
//!   Consumers call `{inventory base URL}/reservations/{order_id}/release` ([`Api::release_path`]).
//!
//! Every `POST`, whatever its answer, also enters the API's call journal ([`Call`]: key, status, arrival
//! and answer times, body), which tests read to see retries, attempts per key and request rates.
//!
//! # Modules
//!
//! * `api`: [`Api`] and the table of APIs: names, endpoints, business rules and answers, and each effect
//!   in words for the log.
//! * `faults`: [`Faults`] (latency and jitter, failures by body text and by attempt per key, 503 / 429 /
//!   hang / reset rates) and the per-request draw.
//! * `connection`: the accepted connections, which a handler can reset (the `reset_rate` fault).
//! * `credentials`: what each API requires of its callers ([`Required`]) and the OAuth 2.0 token endpoint.
//! * `store`: effects, declines, remembered answers, attempts per key, released orders, the call journal
//!   and counters per API ([`Effect`], [`Call`], [`ApiStats`]).
//! * `routes`: the axum router (built from the table of APIs) and handlers.
//! * `problem`: problem-details error answers.
//! * `clock`: RFC 3339 timestamps.
//! * `server`: [`MockApis`], the running server and its in-process handle.
//!
//! Each effect is logged at `info` level in words, e.g.
//! `inventory: reserved 2 × SKU-1 for order o-123 (key inventory:…)`,
//! `email: e-mail to ada@example.com: Your order (key …)`, `sms: SMS to +15550100: Shipped (key …)`,
//! `inventory_release: released the reservation of order o-123 (key …)`,
//! `shipping: label for order o-123 to Lyon (key …)` or `auth: account for ada@example.com (key …)`.

mod api;
mod clock;
mod connection;
mod credentials;
mod faults;
mod problem;
mod routes;
mod server;
mod store;

pub use api::{Api, DECLINED_AMOUNT_SUFFIX, UNKNOWN_SKU_PREFIX, UnknownApi, is_declined_amount};
pub use credentials::Required;
pub use faults::{Faults, parse_rate};
pub use routes::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, MAX_IDEMPOTENCY_KEY_LEN, TRACEPARENT};
pub use server::{DEFAULT_LISTEN, MockApis, MockApisConfig, WaitTimeout};
pub use store::{ApiStats, Call, Effect};
