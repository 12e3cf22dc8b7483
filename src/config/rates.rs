//! `[rates]` and a rule's `rates_in`/`rates_out`: limits per second on
//! packets and bits of each protocol class ([`crate::rates`]), read over
//! a short window of whole ticks.

use serde::Serialize;

use super::raw::{RawRateLimits, RawRates};
use super::units::Span;
use super::{ConfigError, Located};
use crate::rates::{Dir, KEYS, RateLimits, column};

/// A limit's largest value: a petabit (or petapacket) per second.
pub const RATE_LIMIT_MAX: u64 = 1_000_000_000_000_000;
/// The window's most ticks: a short window is what rates are for, and
/// each tracked host with rate traffic keeps one slot per tick.
pub const WINDOW_TICKS_MAX: u64 = 60;

/// The validated `[rates]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatesConfig {
    pub window: Span,
    /// The default limits, by column.
    pub limits: RateLimits,
}

impl RatesConfig {
    /// True if some limit (default or a rule's) is set: the workers count
    /// classes only then.
    pub fn any(&self, rules: &[crate::rules::Rule]) -> bool {
        self.dirs(rules) != 0
    }

    /// The directions some limit (default or a rule's) is set for: the
    /// workers count classes of those only.
    pub fn dirs(&self, rules: &[crate::rules::Rule]) -> crate::rates::Dirs {
        rules
            .iter()
            .fold(self.limits.dirs(), |d, r| match &r.action {
                crate::rules::Action::Limits(l) => d | l.rates.dirs(),
                crate::rules::Action::Ignore => d,
            })
    }
}

/// Reads `[rates]`.
pub(super) fn read(
    raw: &RawRates,
    tick_ms: u128,
    at: &Located<'_>,
) -> Result<RatesConfig, ConfigError> {
    let window = raw.window.unwrap_or_else(|| {
        let ticks = 5000u128.div_ceil(tick_ms).max(1);
        Span(std::time::Duration::from_millis((ticks * tick_ms) as u64))
    });
    let ms = window.0.as_millis();
    let max = tick_ms * u128::from(WINDOW_TICKS_MAX);
    if ms == 0 || ms % tick_ms != 0 || ms > max {
        return Err(at.invalid(
            &["rates", "window"],
            format!(
                "must be a whole number of ticks, from 1 to {WINDOW_TICKS_MAX} (tick = {}ms), got {}",
                tick_ms,
                super::units::format_duration(window.0)
            ),
        ));
    }
    let limits = limits(
        &raw.inbound,
        &raw.out,
        &["rates".into(), "in".into()],
        &["rates".into(), "out".into()],
        at,
    )?;
    Ok(RatesConfig { window, limits })
}

/// The limits of both directions, each checked under its key path.
pub(super) fn limits(
    inbound: &RawRateLimits,
    out: &RawRateLimits,
    in_path: &[String],
    out_path: &[String],
    at: &Located<'_>,
) -> Result<RateLimits, ConfigError> {
    let mut l = RateLimits::default();
    for (dir, raw, path) in [(Dir::In, inbound, in_path), (Dir::Out, out, out_path)] {
        for ((key, class, bits), v) in KEYS.iter().zip(raw.values()) {
            let Some(v) = v else { continue };
            if v == 0 || v > RATE_LIMIT_MAX {
                let mut k = path.to_vec();
                k.push((*key).to_string());
                return Err(at.invalid_path(
                    &k,
                    format!("must be between 1 and {RATE_LIMIT_MAX} per second, got {v}"),
                ));
            }
            l.0[column(dir, *class, *bits)] = Some(v);
        }
    }
    Ok(l)
}
