//! Demo downstream APIs for courier on one HTTP server, behaving as real APIs do: idempotency keys,
//! business answers, latency, errors, throttling, hangs and connection resets.
//!
//! Tests start it in-process on a free port ([`MockApis::start`] with [`MockApisConfig::default`]), set
//! faults ([`MockApis::set_faults`]) and read what it received ([`MockApis::effects`], `declines`, `stats`,
//! `calls` and the `wait_for_*` methods); the local run starts the `mock-apis` binary and reads
//! `/{api}/effects`, `/payment/declines` and `/stats`.
//!
//! | API | Endpoint and body | Answer |
//! |---|---|---|
//! | `inventory` | `POST /inventory/reservations` `{"order_id","items":[{"sku","quantity"}]}` | 201 `{"reservation_id","order_id"}`; 409 `{"error":"unknown_sku","sku"}` for a SKU starting with [`UNKNOWN_SKU_PREFIX`] |
//! | `inventory_release` | `POST /inventory/reservations/{order_id}/release` `{"order_id"?,"reason"?}` | 200 `{"order_id","status":"released"}`, or `"already_released"` for a new key; 404 `{"error":"reservation_not_found","order_id"}` without a reservation |
//! | `payment` | `POST /payment/charges` `{"order_id","amount","currency"}` | 201 `{"charge_id","order_id","amount","currency"}`; 402 `{"error":"card_declined","decline_reason","order_id"}` for an amount ending in [`DECLINED_AMOUNT_SUFFIX`] |
//! | `email` | `POST /email/messages` `{"to","subject","body"}`, or a CloudEvent with `data.email` | 202 `{"message_id","to","status":"queued"}` |
//! | `sms` | `POST /sms/messages` `{"to","text"}` | 202 `{"message_id","to","status":"queued"}` |
//! | `shipping` | `POST /shipping/labels` `{"order_id","customer_id","items":[{"sku","quantity"}]}` | 201 `{"label_id","order_id","tracking_number":"TRK-…"}` |
//! | `auth` | `POST /auth/users` `{"user_id","email"}`, or a CloudEvent with them in `data` | 201 `{"account_id","user_id"}` |
//!
//! Besides: `GET /{api}/effects` and `GET /{api}/declines` ([`Effect`]s), `GET /stats` ([`ApiStats`] by
//! API), `POST /oauth2/token` ([`MockApis::set_oauth2_client`]) and `GET /healthz`.
//!
//! Every `POST` to an API needs an `Idempotency-Key` and a JSON object body (else 400 problem+json). The
//! first answer to a key is remembered and a later call with it (concurrent ones too) gets it again,
//! marked `Idempotent-Replayed: true`; injected failures ([`Faults`]) and refusals (409, 404) are not
//! remembered, so a retry may succeed. A declined charge is remembered but is a decline, not an effect.
//! Every `POST` also enters the API's call journal ([`Call`]), which shows retries and their timing.

mod api;
mod connection;
mod credentials;
mod faults;
mod handler;
mod server;
mod store;

pub use api::{Api, DECLINED_AMOUNT_SUFFIX, UNKNOWN_SKU_PREFIX};
pub use credentials::Required;
pub use faults::Faults;
pub use server::{MockApis, MockApisConfig};
pub use store::{ApiStats, Call, Effect};
