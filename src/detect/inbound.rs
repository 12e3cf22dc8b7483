//! A destination that receives more than its limit from all sources
//! together: the victim of a flood, spoofed sources or not.

use super::{Ctx, Detector, bytes_or_packets};
use crate::alert::{AlertKind, Measurement};
use crate::hosts::HostState;
use crate::rules::Limits;
use crate::window::col;

#[derive(Debug)]
pub struct Inbound;

impl Detector for Inbound {
    fn kind(&self) -> AlertKind {
        AlertKind::Inbound
    }

    fn measure(&self, h: &HostState, l: &Limits, ctx: &Ctx<'_>) -> Option<Measurement> {
        if l.inbound_byte_limit.is_none() && l.inbound_packet_limit.is_none() {
            return None;
        }
        let bytes = h.win.sum(ctx.traffic, ctx.now, col::RECV_BYTES);
        let packets = if l.inbound_packet_limit.is_some() {
            h.win.sum(ctx.traffic, ctx.now, col::RECV_PACKETS)
        } else {
            0
        };
        bytes_or_packets(bytes, packets, l.inbound_byte_limit, l.inbound_packet_limit)
    }
}
