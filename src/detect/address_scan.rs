//! A source that contacts more distinct addresses than allowed within the
//! scan window (the original's ContactedIPsAnalyze / NumberContactedIPs).

use super::{Detector, Reading};
use crate::alert::{AlertKind, Measurement, Unit};
use crate::rules::Limits;

#[derive(Debug)]
pub struct AddressScan;

impl Detector for AddressScan {
    #[inline]
    fn kind(&self) -> AlertKind {
        AlertKind::AddressScan
    }

    #[inline]
    fn measure(&self, r: &Reading, l: &Limits) -> Option<Measurement> {
        let threshold = l.max_contacted_ips?;
        Some(Measurement {
            value: r.addresses,
            threshold: u64::from(threshold),
            unit: Unit::Addresses,
        })
    }
}
