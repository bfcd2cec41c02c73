//! The channels a connection is subscribed to, with its position in each: a vector sorted by
//! channel id. Looked up for every event written (binary search over a few dozen ids is cheaper
//! than hashing a UUID with the standard hasher), and small for the connection that subscribes
//! to few channels — one channel takes 32 bytes, where a `HashMap` allocates a table of four.

use uuid::Uuid;

/// A channel this connection is subscribed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Subscription {
    /// The newest sequence number delivered (or replayed) to the client.
    pub last_seq: u64,
    /// Whether the user may post, once checked.
    pub can_post: Option<bool>,
}

/// See the module documentation.
#[derive(Default)]
pub(super) struct Subscriptions(Vec<(Uuid, Subscription)>);

impl Subscriptions {
    fn find(&self, channel: &Uuid) -> Result<usize, usize> {
        self.0.binary_search_by(|(c, _)| c.cmp(channel))
    }

    /// Subscribes to `channel`, or replaces its subscription.
    pub fn insert(&mut self, channel: Uuid, subscription: Subscription) {
        match self.find(&channel) {
            Ok(at) => self.0[at].1 = subscription,
            Err(at) => {
                // Grow by doubling from one entry (a `Vec` would start at four).
                if self.0.len() == self.0.capacity() {
                    self.0.reserve_exact(self.0.len().max(1));
                }
                self.0.insert(at, (channel, subscription));
            }
        }
    }

    pub fn remove(&mut self, channel: &Uuid) -> Option<Subscription> {
        let at = self.find(channel).ok()?;
        Some(self.0.remove(at).1)
    }

    pub fn contains_key(&self, channel: &Uuid) -> bool {
        self.find(channel).is_ok()
    }

    pub fn get(&self, channel: &Uuid) -> Option<&Subscription> {
        let at = self.find(channel).ok()?;
        Some(&self.0[at].1)
    }

    pub fn get_mut(&mut self, channel: &Uuid) -> Option<&mut Subscription> {
        let at = self.find(channel).ok()?;
        Some(&mut self.0[at].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &Uuid> {
        self.0.iter().map(|(channel, _)| channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(last_seq: u64) -> Subscription {
        Subscription {
            last_seq,
            can_post: None,
        }
    }

    #[test]
    fn behaves_as_a_map_from_channel_to_position() {
        let ids: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
        let mut subscriptions = Subscriptions::default();
        for (n, id) in ids.iter().enumerate() {
            subscriptions.insert(*id, at(n as u64));
        }
        subscriptions.insert(ids[7], at(700));
        assert_eq!(subscriptions.len(), 50);
        for (n, id) in ids.iter().enumerate() {
            let expected = if n == 7 { 700 } else { n as u64 };
            assert_eq!(subscriptions.get(id).map(|s| s.last_seq), Some(expected));
        }
        subscriptions.get_mut(&ids[3]).unwrap().can_post = Some(true);
        assert_eq!(subscriptions.get(&ids[3]).unwrap().can_post, Some(true));
        assert_eq!(subscriptions.remove(&ids[3]).map(|s| s.last_seq), Some(3));
        assert_eq!(subscriptions.remove(&ids[3]), None);
        assert!(!subscriptions.contains_key(&ids[3]));
        assert!(subscriptions.contains_key(&ids[4]));
        assert!(subscriptions.get(&Uuid::new_v4()).is_none());
        let mut keys: Vec<Uuid> = subscriptions.keys().copied().collect();
        assert_eq!(keys.len(), 49);
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 49, "each channel once");
    }

    #[test]
    fn one_channel_takes_one_entry_of_memory() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.insert(Uuid::new_v4(), at(1));
        assert_eq!(subscriptions.0.capacity(), 1);
        subscriptions.insert(Uuid::new_v4(), at(1));
        subscriptions.insert(Uuid::new_v4(), at(1));
        assert_eq!(subscriptions.0.capacity(), 4, "then doubles");
    }
}
