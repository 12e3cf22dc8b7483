//! A source that contacts more distinct destination ports (on one or many
//! destinations) than allowed within the port window (the original's
//! AnalyzePorts / NumContactedPorts / PortInterval).

use super::{Detector, Reading};
use crate::alert::{AlertKind, Measurement, Unit};
use crate::rules::Limits;

#[derive(Debug)]
pub struct PortScan;

impl Detector for PortScan {
    #[inline]
    fn kind(&self) -> AlertKind {
        AlertKind::PortScan
    }

    #[inline]
    fn measure(&self, r: &Reading, l: &Limits) -> Option<Measurement> {
        let threshold = l.max_contacted_ports?;
        Some(Measurement {
            value: r.ports,
            threshold: u64::from(threshold),
            unit: Unit::Ports,
        })
    }
}
