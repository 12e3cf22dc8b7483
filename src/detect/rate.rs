//! A host that receives (or sends) more packets, bits or new flows per
//! second of one class than its limit, averaged over the rate window.

use super::{Detector, Reading};
use crate::alert::{AlertKind, Measurement, Unit};
use crate::rates::{Class, Dir, column};
use crate::rules::Limits;

#[derive(Debug)]
pub struct Rate {
    pub class: Class,
    pub dir: Dir,
}

impl Detector for Rate {
    #[inline]
    fn kind(&self) -> AlertKind {
        AlertKind::of_rate(self.class, self.dir)
    }

    #[inline]
    fn measure(&self, r: &Reading, l: &Limits) -> Option<Measurement> {
        let packet_limit = l.rates.get(self.dir, self.class, false);
        let bit_limit = if self.class.has_bits() {
            l.rates.get(self.dir, self.class, true)
        } else {
            None
        };
        let value = |col| r.rates.as_ref().map_or(0, |a| a[col]);
        let packets = packet_limit.map(|t| Measurement {
            value: value(column(self.dir, self.class, false)),
            threshold: t,
            unit: if self.class == Class::Flows {
                Unit::FlowsPerSec
            } else {
                Unit::PacketsPerSec
            },
        });
        let bits = bit_limit.map(|t| Measurement {
            value: value(column(self.dir, self.class, true)),
            threshold: t,
            unit: Unit::BitsPerSec,
        });
        // Over on either; the one that is over (packets if neither).
        super::either(packets, bits)
    }
}
