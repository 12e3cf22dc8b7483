//! A source that sends more than its byte (or packet) limit within the
//! traffic window.

use super::{Ctx, Detector, bytes_or_packets};
use crate::alert::{AlertKind, Measurement};
use crate::hosts::HostState;
use crate::rules::Limits;
use crate::window::col;

#[derive(Debug)]
pub struct Traffic;

impl Detector for Traffic {
    fn kind(&self) -> AlertKind {
        AlertKind::Traffic
    }

    fn measure(&self, h: &HostState, l: &Limits, ctx: &Ctx<'_>) -> Option<Measurement> {
        if l.byte_limit.is_none() && l.packet_limit.is_none() {
            return None;
        }
        let bytes = h.win.sum(ctx.traffic, ctx.now, col::SENT_BYTES);
        let packets = if l.packet_limit.is_some() {
            h.win.sum(ctx.traffic, ctx.now, col::SENT_PACKETS)
        } else {
            0
        };
        bytes_or_packets(bytes, packets, l.byte_limit, l.packet_limit)
    }
}
