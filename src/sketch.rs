//! How many distinct keys a scanner contacted in all — an estimate with
//! bounded memory (HyperLogLog, Flajolet et al. 2007, with linear counting
//! for small counts as Heule et al. 2013 recommend).
//!
//! A scan's exact count stops at the detector's threshold plus one
//! ([`crate::distinct::DistinctSet`]): that is all detection needs, but an
//! operator reading "contacted 16" about a /24 sweep is misled. Once a set
//! is full, a sketch takes every further key, so the alert can say how big
//! the scan really was. 1 024 one-byte registers: a standard error of
//! 1.04/√1024 ≈ 3.3 %, and about 2 % for a /24 sweep (254 keys), where
//! linear counting applies (below ~2 500 keys).

/// Registers: 2^BITS.
const BITS: u32 = 10;
const M: usize = 1 << BITS;

/// A register's term of the estimate's harmonic sum, `2^-min(r, 31)`, as
/// a multiple of `2^-31`. Every term and every partial sum of at most
/// 1 024 of them (below `2^41` such units) is exact in an `f64`, so the
/// sum kept this way as registers change is the very sum a pass over the
/// registers would add up, in any order.
#[inline]
fn term(r: u8) -> u64 {
    1 << (31 - u32::from(r).min(31))
}

/// A HyperLogLog sketch of 32-bit keys.
#[derive(Clone)]
pub struct Sketch {
    registers: [u8; M],
    /// The registers' terms added up ([`term`]), kept as they change: an
    /// estimate reads it instead of passing over the registers (a
    /// thousand divisions, asked for each scan alert's evidence).
    sum: u64,
    /// Registers still zero.
    zeros: u32,
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch(~{})", self.estimate())
    }
}

impl Default for Sketch {
    fn default() -> Sketch {
        Sketch {
            registers: [0; M],
            sum: M as u64 * term(0),
            zeros: M as u32,
        }
    }
}

/// The register `key` goes to, and its mixed bits: what an add and a
/// fetch ahead must agree on. Keys are fingerprints or small numbers
/// (ports), not uniform: they are mixed into 64 bits first (a bijection,
/// so distinct keys stay distinct).
#[inline]
fn register_of(key: u32) -> (usize, u64) {
    let h = mix(u64::from(key));
    ((h >> (64 - BITS)) as usize, h)
}

impl Sketch {
    /// Bytes one sketch holds on the heap (it is boxed where it is kept).
    pub const BYTES: usize = std::mem::size_of::<Sketch>();

    /// Adds `key` ([`register_of`] says where).
    #[inline]
    pub fn add(&mut self, key: u32) {
        let (index, h) = register_of(key);
        // The rank of the remaining bits: position of the first one bit,
        // capped by their width.
        let rest = h << BITS;
        let rank = (rest.leading_zeros().min(64 - BITS) + 1) as u8;
        self.raise(index, rank);
    }

    /// Register `index` to `rank` if that is higher, its sum and zero
    /// count kept.
    #[inline]
    fn raise(&mut self, index: usize, rank: u8) {
        let old = self.registers[index];
        if rank > old {
            self.registers[index] = rank;
            self.sum = self.sum - term(old) + term(rank);
            self.zeros -= u32::from(old == 0);
        }
    }

    /// Starts loading the register `key` goes to.
    #[inline]
    pub fn prefetch(&self, key: u32) {
        tpacket::prefetch(&self.registers[register_of(key).0]);
    }

    /// The estimated number of distinct keys added.
    pub fn estimate(&self) -> u64 {
        let m = M as f64;
        // Both exact: below 2^53, and a power of two.
        let sum = self.sum as f64 / term(0) as f64;
        let zeros = self.zeros;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as u64
    }
}

/// splitmix64's finaliser: every input bit moves about half the output bits.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(n: u32, keys: impl Iterator<Item = u32>, tolerance: f64) {
        let mut s = Sketch::default();
        for k in keys {
            s.add(k);
        }
        let e = s.estimate() as f64;
        let err = (e - f64::from(n)).abs() / f64::from(n);
        assert!(err <= tolerance, "{n} keys estimated as {e} ({err:.3})");
    }

    /// The harmonic sum and zero count by a pass over the registers, as
    /// the estimate once made them.
    fn by_pass(s: &Sketch) -> (f64, u32) {
        let mut sum = 0.0;
        let mut zeros = 0;
        for &r in &s.registers {
            sum += 1.0 / f64::from(1u32 << r.min(31));
            zeros += u32::from(r == 0);
        }
        (sum, zeros)
    }

    #[test]
    fn the_kept_sum_is_the_registers_sum_to_the_bit() {
        let mut s = Sketch::default();
        let check = |s: &Sketch| {
            let (sum, zeros) = by_pass(s);
            assert_eq!(s.sum as f64 / term(0) as f64, sum);
            assert_eq!(s.zeros, zeros);
        };
        check(&s);
        for k in 0..200_000u32 {
            s.add(k.wrapping_mul(2_654_435_761));
            if k.is_power_of_two() {
                check(&s);
            }
        }
        check(&s);
        // Ranks past 31 (one key in 2^31 reaches one) count as 31, as
        // the pass counted them.
        let mut deep = Sketch::default();
        for (index, rank) in [(3, 40), (9, 55), (9, 20), (700, 31), (3, 41)] {
            deep.raise(index, rank);
            check(&deep);
        }
        assert_eq!(deep.zeros, M as u32 - 3);
    }

    #[test]
    fn small_counts_are_nearly_exact() {
        let mut s = Sketch::default();
        assert_eq!(s.estimate(), 0);
        s.add(7);
        s.add(7);
        assert_eq!(s.estimate(), 1);
        // A /24 sweep: 254 addresses (fingerprints), and 254 ports.
        within(254, (1..=254).map(|i| 0x0a00_0000 | i), 0.05);
        within(254, (1..=254u32).map(|p| (6 << 16) | p), 0.05);
    }

    #[test]
    fn large_counts_within_a_few_standard_errors() {
        // 1.04/32 = 3.3 %: three standard errors.
        for n in [1_000u32, 10_000, 65_535, 1_000_000] {
            within(n, 0..n, 0.1);
        }
        // Every port of both protocols.
        within(
            131_072,
            (0..65_536u32).flat_map(|p| [(6 << 16) | p, (17 << 16) | p]),
            0.1,
        );
    }

    #[test]
    fn repeats_do_not_count() {
        let mut s = Sketch::default();
        for _ in 0..100 {
            for k in 0..500 {
                s.add(k);
            }
        }
        let e = s.estimate();
        assert!((475..=525).contains(&e), "{e}");
    }
}
