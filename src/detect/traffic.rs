//! A source that sends more than its byte (or packet) limit within the
//! traffic window.

use super::{Detector, Reading, bytes_or_packets};
use crate::alert::{AlertKind, Measurement};
use crate::rules::Limits;

#[derive(Debug)]
pub struct Traffic;

impl Detector for Traffic {
    #[inline]
    fn kind(&self) -> AlertKind {
        AlertKind::Traffic
    }

    #[inline]
    fn measure(&self, r: &Reading, l: &Limits) -> Option<Measurement> {
        if l.byte_limit.is_none() && l.packet_limit.is_none() {
            return None;
        }
        bytes_or_packets(r.sent_bytes, r.sent_packets, l.byte_limit, l.packet_limit)
    }
}
