//! A place in a bounded count: what keeps a flood's queues (attempts waiting
//! for a hash, refusals waiting out their delay) from growing without end.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Held while counted in `count`; given back when dropped, also when the
/// future holding it is cancelled.
pub struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    /// A place if fewer than `max` are taken, else `None`.
    pub fn take(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        if count.fetch_add(1, Ordering::AcqRel) >= max {
            count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Place(count))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_places_and_each_comes_back() {
        let count = AtomicUsize::new(0);
        let a = Place::take(&count, 2).unwrap();
        let b = Place::take(&count, 2).unwrap();
        assert!(Place::take(&count, 2).is_none());
        assert_eq!(
            count.load(Ordering::Acquire),
            2,
            "a refusal leaves no trace"
        );
        drop(a);
        let c = Place::take(&count, 2).unwrap();
        drop((b, c));
        assert_eq!(count.load(Ordering::Acquire), 0);
    }
}
