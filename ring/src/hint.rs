//! Memory hints for the packet path: starting a load early so that several
//! cache misses overlap instead of being waited for one after another.

/// Hints the CPU to start loading the cache line that holds `r`. Reads
/// nothing and changes nothing the program can observe.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetching is a hint that never faults and has no effect
        // on memory (the address comes from a live reference anyway); SSE,
        // which it needs, is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
