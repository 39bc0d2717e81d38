//! The running instances, each under an [`InstanceId`] that stays its own for as long as it
//! runs: a reload that removes one instance leaves every other's identifier as it was (a
//! `Vec` index would shift under it).

use std::{
    collections::BTreeMap,
    ops::{Index, IndexMut},
};

use super::Running;

/// Which running instance. Never reused within a daemon's life, so an identifier kept across
/// a removal names the removed instance or nothing, never its neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct InstanceId(u64);

/// The running instances in the order they started (identifiers only grow, and the map
/// iterates in their order, which is the configuration file's order for one start).
/// Generic only so its tests can hold something lighter than a [`Running`].
pub(super) struct Instances<T = Running> {
    by_id: BTreeMap<InstanceId, T>,
    next: u64,
}

impl<T> Default for Instances<T> {
    fn default() -> Self {
        Self {
            by_id: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<T> Instances<T> {
    pub(super) fn insert(&mut self, running: T) -> InstanceId {
        let id = InstanceId(self.next);
        self.next += 1;
        self.by_id.insert(id, running);
        id
    }

    pub(super) fn remove(&mut self, id: InstanceId) -> Option<T> {
        self.by_id.remove(&id)
    }

    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The identifiers as they are now, for a pass that may remove instances or needs
    /// `&mut Daemon` for each.
    pub(super) fn ids(&self) -> Vec<InstanceId> {
        self.by_id.keys().copied().collect()
    }

    /// The first instance (in start order) that `wanted` holds for.
    pub(super) fn find(&self, mut wanted: impl FnMut(&T) -> bool) -> Option<InstanceId> {
        self.by_id
            .iter()
            .find_map(|(id, running)| wanted(running).then_some(*id))
    }

    /// Every instance `wanted` holds for, in start order.
    pub(super) fn ids_where(&self, mut wanted: impl FnMut(&T) -> bool) -> Vec<InstanceId> {
        self.by_id
            .iter()
            .filter_map(|(id, running)| wanted(running).then_some(*id))
            .collect()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_id.values()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.by_id.values_mut()
    }
}

/// An identifier the daemon holds names a running instance; indexing with a removed one is a
/// bug in the daemon, as an out-of-range index would be.
impl<T> Index<InstanceId> for Instances<T> {
    type Output = T;

    fn index(&self, id: InstanceId) -> &T {
        self.by_id
            .get(&id)
            .unwrap_or_else(|| panic!("{id:?} is not running"))
    }
}

impl<T> IndexMut<InstanceId> for Instances<T> {
    fn index_mut(&mut self, id: InstanceId) -> &mut T {
        self.by_id
            .get_mut(&id)
            .unwrap_or_else(|| panic!("{id:?} is not running"))
    }
}

impl<'a, T> IntoIterator for &'a Instances<T> {
    type Item = &'a T;
    type IntoIter = std::collections::btree_map::Values<'a, InstanceId, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.by_id.values()
    }
}

impl<'a, T> IntoIterator for &'a mut Instances<T> {
    type Item = &'a mut T;
    type IntoIter = std::collections::btree_map::ValuesMut<'a, InstanceId, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.by_id.values_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::Instances;

    #[test]
    fn removing_an_instance_leaves_the_others_identifiers_as_they_were() {
        let mut instances = Instances::<&str>::default();
        let a = instances.insert("a");
        let b = instances.insert("b");
        let c = instances.insert("c");
        assert_eq!(instances.remove(b), Some("b"));
        assert_eq!((instances[a], instances[c]), ("a", "c"));
        // A new instance gets a new identifier: the removed one names nothing.
        let d = instances.insert("d");
        assert!(d != b && d != a && d != c);
        assert_eq!(instances.remove(b), None);
        assert_eq!(
            instances.iter().copied().collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
        assert_eq!(instances.ids(), [a, c, d]);
        assert_eq!(instances.find(|n| *n == "c"), Some(c));
        assert_eq!(instances.ids_where(|n| *n != "a"), [c, d]);
    }

    #[test]
    #[should_panic(expected = "is not running")]
    fn indexing_with_a_removed_identifier_is_a_bug() {
        let mut instances = Instances::<&str>::default();
        let a = instances.insert("a");
        instances.remove(a);
        let _ = instances[a];
    }
}
