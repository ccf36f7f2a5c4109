//! Which version answered which request, for feedback that names a request by its `id`: the
//! last [`REMEMBERED`] answers of each kind, the oldest forgotten first.
//!
//! Written on every answer through the gateway, so it is kept cheap. Most requests come
//! without an id and get one the gateway makes, `{prefix}{sequence}` in hex (the prefix
//! random per gateway): such an answer goes to the slot `sequence % REMEMBERED` of a ring,
//! one write to memory written just before, and a lookup parses the slot out of the id. An
//! id the client chose goes to a table keyed by a seeded 64-bit hash of it (the id itself is
//! kept to confirm a lookup); two such ids with the same hash (about one chance in 10^10
//! among 100 000) make the older one unknown to feedback.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::request_id::RequestId;

/// Answers remembered, of each kind.
pub const REMEMBERED: usize = 100_000;

/// Keys are hashes already: used as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// An answer to an id the gateway made.
#[derive(Clone)]
struct Slot {
    seq: u64,
    handle: Arc<str>,
    version: i64,
}

/// An answer to an id the client chose.
struct Entry {
    id: Box<str>,
    handle: Arc<str>,
    version: i64,
}

#[derive(Default)]
struct State {
    ring: Vec<Option<Slot>>,
    by_hash: HashMap<u64, Entry, BuildHasherDefault<Identity>>,
    order: VecDeque<u64>,
}

pub struct Answered {
    prefix: u64,
    next: AtomicU64,
    seed: foldhash::fast::RandomState,
    capacity: usize,
    state: Mutex<State>,
}

impl Default for Answered {
    fn default() -> Answered {
        Answered::with_capacity(REMEMBERED)
    }
}

impl Answered {
    pub fn with_capacity(capacity: usize) -> Answered {
        Answered {
            prefix: rand::random(),
            next: AtomicU64::new(0),
            seed: foldhash::fast::RandomState::default(),
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// A new id: its sequence number, and its text.
    pub fn new_id(&self) -> (u64, String) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        (seq, format!("{:016x}{seq:016x}", self.prefix))
    }

    /// The sequence number of an id this gateway made.
    fn made(&self, id: &str) -> Option<u64> {
        let (prefix, seq) = (id.get(..16)?, id.get(16..)?);
        let seq = (id.len() == 32 && u64::from_str_radix(prefix, 16).ok()? == self.prefix).then(|| u64::from_str_radix(seq, 16).ok())??;
        (seq < self.next.load(Ordering::Relaxed)).then_some(seq)
    }

    /// `handle`'s `version` answered request `id`.
    pub fn remember(&self, id: &RequestId, handle: &Arc<str>, version: i64) {
        let mut state = self.state.lock().expect("answered lock");
        match id {
            RequestId::Made(seq) => {
                if state.ring.is_empty() {
                    state.ring = vec![None; self.capacity];
                }
                let slot = (*seq % self.capacity as u64) as usize;
                state.ring[slot] = Some(Slot { seq: *seq, handle: handle.clone(), version });
            }
            RequestId::Given(id) => {
                let key = self.seed.hash_one(id.as_str());
                let State { by_hash, order, .. } = &mut *state;
                if by_hash.insert(key, Entry { id: id.as_str().into(), handle: handle.clone(), version }).is_none() {
                    order.push_back(key);
                    if order.len() > self.capacity
                        && let Some(oldest) = order.pop_front()
                    {
                        by_hash.remove(&oldest);
                    }
                }
            }
        }
    }

    /// The version of `handle` that answered `id`, while it is remembered.
    pub fn version(&self, handle: &str, id: &str) -> Option<i64> {
        let made = self.made(id);
        let key = self.seed.hash_one(id);
        let state = self.state.lock().expect("answered lock");
        if let Some(seq) = made
            && let Some(Some(slot)) = state.ring.get((seq % self.capacity as u64) as usize)
            && slot.seq == seq
            && &*slot.handle == handle
        {
            return Some(slot.version);
        }
        // A client may choose an id that looks like the gateway's.
        state.by_hash.get(&key).filter(|e| &*e.id == id && &*e.handle == handle).map(|e| e.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(id: &str) -> RequestId {
        RequestId::Given(id.to_owned())
    }

    #[test]
    fn client_ids_are_found_by_id_and_handle_and_the_oldest_forgotten() {
        let answered = Answered::with_capacity(3);
        let (iris, other): (Arc<str>, Arc<str>) = ("iris".into(), "other".into());
        answered.remember(&given("a"), &iris, 1);
        answered.remember(&given("b"), &iris, 2);
        answered.remember(&given("c"), &other, 1);
        assert_eq!([answered.version("iris", "a"), answered.version("iris", "b"), answered.version("other", "c")], [Some(1), Some(2), Some(1)]);
        assert_eq!(answered.version("other", "a"), None, "another handle's answer");
        assert_eq!(answered.version("iris", "zz"), None);
        // The same id again replaces its entry and takes no second place in the order.
        answered.remember(&given("a"), &iris, 3);
        assert_eq!(answered.version("iris", "a"), Some(3));
        answered.remember(&given("d"), &iris, 4);
        assert_eq!(answered.version("iris", "a"), None, "the oldest is forgotten");
        assert_eq!([answered.version("iris", "b"), answered.version("other", "c"), answered.version("iris", "d")], [Some(2), Some(1), Some(4)]);
        let state = answered.state.lock().unwrap();
        assert_eq!((state.by_hash.len(), state.order.len()), (3, 3));
    }

    #[test]
    fn made_ids_use_the_ring_and_are_forgotten_after_a_lap() {
        let answered = Answered::with_capacity(4);
        let iris: Arc<str> = "iris".into();
        let ids: Vec<(u64, String)> = (0..6).map(|_| answered.new_id()).collect();
        assert!(ids.iter().all(|(_, text)| text.len() == 32 && answered.made(text).is_some()));
        assert_ne!(ids[0].1, ids[1].1);
        for (n, (seq, _)) in ids.iter().enumerate() {
            answered.remember(&RequestId::Made(*seq), &iris, n as i64);
        }
        let found: Vec<Option<i64>> = ids.iter().map(|(_, text)| answered.version("iris", text)).collect();
        assert_eq!(found, [None, None, Some(2), Some(3), Some(4), Some(5)], "a lap of 4 forgets the first two");
        assert_eq!(answered.version("other", &ids[5].1), None, "another handle's answer");
        // Not ours: another prefix, an id not issued yet, other text.
        let foreign = format!("{:016x}{:016x}", answered.prefix ^ 1, ids[5].0);
        let unissued = format!("{:016x}{:016x}", answered.prefix, 99);
        assert_eq!([answered.made(&foreign), answered.made(&unissued), answered.made("zz"), answered.made(&format!("{}x", ids[5].1))], [None; 4]);
        assert_eq!(answered.state.lock().unwrap().by_hash.len(), 0, "made ids never reach the table");
        // A client's id that looks like one of ours is still found as the client's.
        answered.remember(&given(&unissued), &iris, 9);
        assert_eq!(answered.version("iris", &unissued), Some(9));
    }

    #[test]
    fn it_stays_bounded() {
        let answered = Answered::with_capacity(1000);
        let iris: Arc<str> = "iris".into();
        for n in 0..5000 {
            answered.remember(&given(&format!("{n:032x}")), &iris, n);
            let (seq, _) = answered.new_id();
            answered.remember(&RequestId::Made(seq), &iris, n);
        }
        let state = answered.state.lock().unwrap();
        assert_eq!((state.by_hash.len(), state.order.len(), state.ring.len()), (1000, 1000, 1000));
        drop(state);
        assert_eq!(answered.version("iris", &format!("{:032x}", 4999)), Some(4999));
        assert_eq!(answered.version("iris", &format!("{:032x}", 3999)), None);
    }
}
