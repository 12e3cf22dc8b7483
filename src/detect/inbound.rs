//! A destination that receives more than its limit from all sources
//! together: the victim of a flood, spoofed sources or not.

use super::{Detector, Reading, bytes_or_packets};
use crate::alert::{AlertKind, Measurement};
use crate::rules::Limits;

#[derive(Debug)]
pub struct Inbound;

impl Detector for Inbound {
    #[inline]
    fn kind(&self) -> AlertKind {
        AlertKind::Inbound
    }

    #[inline]
    fn measure(&self, r: &Reading, l: &Limits) -> Option<Measurement> {
        if l.inbound_byte_limit.is_none() && l.inbound_packet_limit.is_none() {
            return None;
        }
        bytes_or_packets(
            r.recv_bytes,
            r.recv_packets,
            l.inbound_byte_limit,
            l.inbound_packet_limit,
        )
    }
}
