//! How the partitions' passes run: on threads kept for the aggregator's
//! life, and what they return put back in partition order, so that a
//! pass's result does not depend on which thread finished first.

use super::Aggregator;
use super::partition::{Partition, Transitions};

/// Threads for the partitions after the first, kept for the aggregator's
/// life. A tick makes several passes over the partitions, and starting a
/// thread for each partition and pass cost more than a quiet tick's whole
/// work (an idle tick took 98 µs with two partitions, 8 µs with one).
/// None with one partition, or if the threads cannot be had: the
/// partitions then take turns on the aggregator's thread (slower, same
/// counts), where starting threads per pass would panic the same way.
pub(super) fn partition_pool(threads: usize) -> Option<rayon::ThreadPool> {
    if threads < 2 {
        return None;
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads - 1)
        .thread_name(|i| format!("aggregator-{}", i + 1))
        .build()
    {
        Ok(pool) => Some(pool),
        Err(e) => {
            log::warn!(
                "cannot start threads for the aggregator's {threads} partitions ({e}); they take turns on one thread"
            );
            None
        }
    }
}

/// Runs `f` on every partition, the first on this thread and the others
/// on the pool's; results in partition order.
pub(super) fn each_part<R: Send>(
    pool: Option<&rayon::ThreadPool>,
    parts: &mut [Partition],
    f: impl Fn(&mut Partition) -> R + Sync,
) -> Vec<R> {
    let (Some(pool), Some((first, rest))) = (pool, parts.split_first_mut()) else {
        return parts.iter_mut().map(f).collect();
    };
    let f = &f;
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None)
        .take(rest.len() + 1)
        .collect();
    if let Some((mine, theirs)) = out.split_first_mut() {
        // A job's panic is raised here once every job has ended.
        pool.in_place_scope(|s| {
            for (p, o) in rest.iter_mut().zip(theirs.iter_mut()) {
                s.spawn(move |_| *o = Some(f(p)));
            }
            *mine = Some(f(first));
        });
    }
    out.into_iter().flatten().collect()
}

impl Aggregator {
    /// Hands the ids of the alerts opened in this close, from `first_id`
    /// on, out again in partition order. The partitions' threads took them
    /// from the shared counter in whichever order they got to it, so two
    /// replays of one capture with several partitions numbered the same
    /// alerts differently. With one partition the order is the same.
    pub(super) fn renumber(&mut self, results: &mut [Transitions], first_id: u64) {
        if self.parts.len() < 2 {
            return;
        }
        // In partition order: the alerts opened, then those opened and
        // closed in this same close (never announced opened, but their ids
        // were taken here).
        let mut taken = Vec::new();
        for (p, (opened, closed)) in self.parts.iter().zip(results.iter()) {
            for &(kind, addr) in opened {
                if let Some(o) = p.lifecycle.get(kind, addr) {
                    taken.push(o.alert.id);
                }
            }
            taken.extend(closed.iter().map(|a| a.id).filter(|&id| id >= first_id));
        }
        if taken.is_empty() {
            return;
        }
        taken.sort_unstable();
        let mut next = taken.into_iter();
        for (p, (opened, closed)) in self.parts.iter_mut().zip(results.iter_mut()) {
            for &(kind, addr) in opened.iter() {
                if let Some(o) = p.lifecycle.get_mut(kind, addr) {
                    o.alert.id = next.next().unwrap_or(o.alert.id);
                }
            }
            for a in closed.iter_mut().filter(|a| a.id >= first_id) {
                a.id = next.next().unwrap_or(a.id);
            }
        }
    }
}
