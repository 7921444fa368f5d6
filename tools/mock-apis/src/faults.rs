//! Fault injection: what can go wrong with an API ([`Faults`]), partial updates of it ([`FaultsPatch`]),
//! and the per-request draw that decides which fault, if any, a request gets.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The faults one API injects. Every field has a default, so a JSON object may name only some of them
/// (`PUT /admin/faults/{api}` resets the fields it leaves out; `PATCH` keeps them).
///
/// Each request draws one number: the first `error_rate` of the range answers 503, the next
/// `throttle_rate` answers 429, the next `hang_rate` hangs; the rest answer normally. When the rates add up
/// to more than 1, the later ones get what is left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay, in milliseconds, before every answer of the API (failures included).
    pub latency_ms: u64,
    /// Share of requests (0.0–1.0) answered `503 Service Unavailable`, with no effect.
    pub error_rate: f64,
    /// Share of requests (0.0–1.0) answered `429 Too Many Requests` with `Retry-After`, with no effect.
    pub throttle_rate: f64,
    /// Seconds sent in the `Retry-After` header of a 429 answer.
    pub retry_after_secs: u64,
    /// Share of requests (0.0–1.0) that take effect but wait `hang_ms` before answering, i.e. past a
    /// client's timeout: the client sees a timeout although the effect happened.
    pub hang_rate: f64,
    /// How long, in milliseconds, a hanging request waits before answering.
    pub hang_ms: u64,
}

impl Faults {
    /// Default of [`Faults::hang_ms`]: one minute, longer than any sensible client timeout.
    pub const DEFAULT_HANG_MS: u64 = 60_000;
    /// Default of [`Faults::retry_after_secs`].
    pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

    /// No faults at all: answers at once and always succeeds.
    pub fn none() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            throttle_rate: 0.0,
            retry_after_secs: Self::DEFAULT_RETRY_AFTER_SECS,
            hang_rate: 0.0,
            hang_ms: Self::DEFAULT_HANG_MS,
        }
    }

    /// Checks that every rate is a number between 0.0 and 1.0.
    pub fn validate(&self) -> Result<(), InvalidFaults> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("hang_rate", self.hang_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(InvalidFaults(format!(
                    "{name} must be between 0.0 and 1.0, got {rate}"
                )));
            }
        }
        Ok(())
    }

    /// The same faults with every rate forced into 0.0–1.0 (a NaN becomes 0.0).
    pub fn sanitized(self) -> Self {
        let clamp = |rate: f64| {
            if rate.is_nan() {
                0.0
            } else {
                rate.clamp(0.0, 1.0)
            }
        };
        Self {
            error_rate: clamp(self.error_rate),
            throttle_rate: clamp(self.throttle_rate),
            hang_rate: clamp(self.hang_rate),
            ..self
        }
    }

    /// The fault a request gets for `roll`, a uniform draw from `[0, 1)`.
    pub(crate) fn injection(&self, roll: f64) -> Injection {
        let error = self.error_rate;
        let throttle = error + self.throttle_rate;
        let hang = throttle + self.hang_rate;
        if roll < error {
            Injection::Error
        } else if roll < throttle {
            Injection::Throttle
        } else if roll < hang {
            Injection::Hang
        } else {
            Injection::None
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

/// A partial update of [`Faults`] (`PATCH /admin/faults/{api}`): the fields given replace the current
/// ones, the others stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsPatch {
    /// New [`Faults::latency_ms`], if given.
    pub latency_ms: Option<u64>,
    /// New [`Faults::error_rate`], if given.
    pub error_rate: Option<f64>,
    /// New [`Faults::throttle_rate`], if given.
    pub throttle_rate: Option<f64>,
    /// New [`Faults::retry_after_secs`], if given.
    pub retry_after_secs: Option<u64>,
    /// New [`Faults::hang_rate`], if given.
    pub hang_rate: Option<f64>,
    /// New [`Faults::hang_ms`], if given.
    pub hang_ms: Option<u64>,
}

impl FaultsPatch {
    /// `current` with the fields of this patch applied.
    pub fn apply(&self, current: Faults) -> Faults {
        Faults {
            latency_ms: self.latency_ms.unwrap_or(current.latency_ms),
            error_rate: self.error_rate.unwrap_or(current.error_rate),
            throttle_rate: self.throttle_rate.unwrap_or(current.throttle_rate),
            retry_after_secs: self.retry_after_secs.unwrap_or(current.retry_after_secs),
            hang_rate: self.hang_rate.unwrap_or(current.hang_rate),
            hang_ms: self.hang_ms.unwrap_or(current.hang_ms),
        }
    }
}

/// What a request was picked for by the fault draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injection {
    /// Answer normally.
    None,
    /// Answer 503 without effect.
    Error,
    /// Answer 429 with `Retry-After`, without effect.
    Throttle,
    /// Take effect, then wait `hang_ms` before answering.
    Hang,
}

/// Faults that cannot be applied, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFaults(pub String);

impl fmt::Display for InvalidFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidFaults {}

/// Parses a rate between 0.0 and 1.0 (for command-line flags).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0.0 and 1.0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_splits_the_range_in_order() {
        let faults = Faults {
            error_rate: 0.2,
            throttle_rate: 0.3,
            hang_rate: 0.1,
            ..Faults::none()
        };
        assert_eq!(faults.injection(0.0), Injection::Error);
        assert_eq!(faults.injection(0.19), Injection::Error);
        assert_eq!(faults.injection(0.2), Injection::Throttle);
        assert_eq!(faults.injection(0.49), Injection::Throttle);
        assert_eq!(faults.injection(0.55), Injection::Hang);
        assert_eq!(faults.injection(0.6), Injection::None);
        assert_eq!(Faults::none().injection(0.0), Injection::None);
        let always = Faults {
            error_rate: 1.0,
            ..Faults::none()
        };
        assert_eq!(always.injection(0.999_999), Injection::Error);
    }

    #[test]
    fn rates_are_checked_and_clamped() {
        assert!(Faults::none().validate().is_ok());
        let bad = Faults {
            throttle_rate: 1.5,
            hang_rate: f64::NAN,
            ..Faults::none()
        };
        assert!(bad.validate().is_err());
        let clamped = bad.sanitized();
        assert_eq!(clamped.throttle_rate, 1.0);
        assert_eq!(clamped.hang_rate, 0.0);
        assert!(clamped.validate().is_ok());
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("2").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("x").is_err());
    }

    #[test]
    fn json_fields_default_and_unknown_ones_are_refused() {
        let faults: Faults = serde_json::from_str(r#"{"error_rate": 0.5}"#).expect("parses");
        assert_eq!(
            faults,
            Faults {
                error_rate: 0.5,
                ..Faults::none()
            }
        );
        assert!(serde_json::from_str::<Faults>(r#"{"eror_rate": 0.5}"#).is_err());
        let patch: FaultsPatch = serde_json::from_str(r#"{"hang_ms": 5}"#).expect("parses");
        let patched = patch.apply(faults);
        assert_eq!(patched.hang_ms, 5);
        assert_eq!(patched.error_rate, 0.5);
    }
}
