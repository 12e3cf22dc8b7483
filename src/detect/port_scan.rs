//! A source that contacts more distinct destination ports (on one or many
//! destinations) than allowed within the port window (the original's
//! AnalyzePorts / NumContactedPorts / PortInterval).

use super::{Ctx, Detector};
use crate::alert::{AlertKind, Measurement, Unit};
use crate::hosts::HostState;
use crate::rules::Limits;

#[derive(Debug)]
pub struct PortScan;

impl Detector for PortScan {
    fn kind(&self) -> AlertKind {
        AlertKind::PortScan
    }

    fn measure(&self, h: &HostState, l: &Limits, ctx: &Ctx<'_>) -> Option<Measurement> {
        let threshold = l.max_contacted_ports?;
        let value = h
            .scan
            .as_ref()
            .map_or(0, |s| s.ports.count(ctx.now, ctx.port_window));
        Some(Measurement {
            value: value as u64,
            threshold: u64::from(threshold),
            unit: Unit::Ports,
        })
    }
}
