//! Which version answered which request, for feedback that names a request by its `id`:
//! the last [`REMEMBERED`] answers, the oldest forgotten first.
//!
//! Written on every answer through the gateway, so it is kept cheap: an entry is keyed by a
//! seeded 64-bit hash of its id (the id itself is kept to confirm a lookup), and the order of
//! arrival is a ring of those hashes, so an answer costs one allocation. Two ids with the same
//! hash (about one chance in 10^10 among 100 000) make the older one unknown to feedback.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

/// Answers remembered.
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

struct Entry {
    id: Box<str>,
    handle: Arc<str>,
    version: i64,
}

struct State {
    by_hash: HashMap<u64, Entry, BuildHasherDefault<Identity>>,
    order: VecDeque<u64>,
}

pub struct Answered {
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
        let state = State { by_hash: HashMap::default(), order: VecDeque::new() };
        Answered { seed: foldhash::fast::RandomState::default(), capacity: capacity.max(1), state: Mutex::new(state) }
    }

    /// `handle`'s `version` answered request `id`.
    pub fn remember(&self, id: &str, handle: &Arc<str>, version: i64) {
        let key = self.seed.hash_one(id);
        let mut state = self.state.lock().expect("answered lock");
        let State { by_hash, order } = &mut *state;
        let entry = Entry { id: id.into(), handle: handle.clone(), version };
        if by_hash.insert(key, entry).is_none() {
            order.push_back(key);
            if order.len() > self.capacity
                && let Some(oldest) = order.pop_front()
            {
                by_hash.remove(&oldest);
            }
        }
    }

    /// The version of `handle` that answered `id`, while it is remembered.
    pub fn version(&self, handle: &str, id: &str) -> Option<i64> {
        let key = self.seed.hash_one(id);
        let state = self.state.lock().expect("answered lock");
        state.by_hash.get(&key).filter(|e| &*e.id == id && &*e.handle == handle).map(|e| e.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_by_id_and_handle_and_the_oldest_forgotten() {
        let answered = Answered::with_capacity(3);
        let (iris, other): (Arc<str>, Arc<str>) = ("iris".into(), "other".into());
        answered.remember("a", &iris, 1);
        answered.remember("b", &iris, 2);
        answered.remember("c", &other, 1);
        assert_eq!([answered.version("iris", "a"), answered.version("iris", "b"), answered.version("other", "c")], [Some(1), Some(2), Some(1)]);
        assert_eq!(answered.version("other", "a"), None, "another handle's answer");
        assert_eq!(answered.version("iris", "zz"), None);
        // The same id again replaces its entry and takes no second place in the order.
        answered.remember("a", &iris, 3);
        assert_eq!(answered.version("iris", "a"), Some(3));
        answered.remember("d", &iris, 4);
        assert_eq!(answered.version("iris", "a"), None, "the oldest is forgotten");
        assert_eq!([answered.version("iris", "b"), answered.version("other", "c"), answered.version("iris", "d")], [Some(2), Some(1), Some(4)]);
        let state = answered.state.lock().unwrap();
        assert_eq!((state.by_hash.len(), state.order.len()), (3, 3));
    }

    #[test]
    fn it_stays_bounded() {
        let answered = Answered::with_capacity(1000);
        let iris: Arc<str> = "iris".into();
        for n in 0..5000 {
            answered.remember(&format!("{n:032x}"), &iris, n);
        }
        let state = answered.state.lock().unwrap();
        assert_eq!((state.by_hash.len(), state.order.len()), (1000, 1000));
        drop(state);
        assert_eq!(answered.version("iris", &format!("{:032x}", 4999)), Some(4999));
        assert_eq!(answered.version("iris", &format!("{:032x}", 3999)), None);
    }
}
