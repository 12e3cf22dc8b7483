//! A source that contacts more distinct addresses than allowed within the
//! scan window (the original's ContactedIPsAnalyze / NumberContactedIPs).

use super::{Ctx, Detector};
use crate::alert::{AlertKind, Measurement, Unit};
use crate::hosts::HostState;
use crate::rules::Limits;

#[derive(Debug)]
pub struct AddressScan;

impl Detector for AddressScan {
    fn kind(&self) -> AlertKind {
        AlertKind::AddressScan
    }

    fn measure(&self, h: &HostState, l: &Limits, ctx: &Ctx<'_>) -> Option<Measurement> {
        let threshold = l.max_contacted_ips?;
        let value = h
            .scan
            .as_ref()
            .map_or(0, |s| s.addresses.count(ctx.now, ctx.scan_window));
        Some(Measurement {
            value: value as u64,
            threshold: u64::from(threshold),
            unit: Unit::Addresses,
        })
    }
}
