//! courier's consumers. Each is a domain mapping from events to calls of one downstream API, run by the
//! delivery runtime of the shared library ([`courier::delivery`]); its binary in `src/bin/` is a thin `main`.
//!
//! * [`inventory`]: reserves an order's items at the inventory API (group `inventory`, `orders.created`).

pub mod inventory;
