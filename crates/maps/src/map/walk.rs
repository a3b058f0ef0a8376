//! Walking a map's elements from user space without a copy per key: what checkpoints and
//! state records need for maps of millions of entries (Katran's, Maglev's tables), where
//! [`Map::keys`] plus [`Map::lookup_elem`] would allocate two vectors per element.

use super::{Map, MapType};

impl Map {
    /// Calls `f(key, value)` for each element in `get_next_key` order, with the value as
    /// `lookup_elem` returns it. Plain arrays are read in place, and with `skip_zero` their
    /// all-zero slots are left out (an untouched slot of a lazily backed array is read from the
    /// shared zero page, so the walk does not make the map resident). Other maps walk their
    /// keys. Maps without keys (queue, stack, ring buffer) have no elements here.
    pub fn for_each_elem(&self, skip_zero: bool, mut f: impl FnMut(&[u8], &[u8])) {
        if self.0.map_type == MapType::Array {
            let n = self.0.max_entries;
            let vs = self.0.value_size as usize;
            for idx in 0..n {
                // SAFETY: idx < max_entries <= the slots allocated; each slot holds value_size
                // initialised bytes that live as long as the map (`&self` keeps it).
                let v = unsafe { std::slice::from_raw_parts(self.array_slot(idx), vs) };
                if skip_zero && v.iter().all(|b| *b == 0) {
                    continue;
                }
                f(&idx.to_ne_bytes(), v);
            }
            return;
        }
        for k in self.keys() {
            if let Ok(v) = self.lookup_elem(&k) {
                if skip_zero && self.0.map_type.is_array_family() && v.iter().all(|b| *b == 0) {
                    continue;
                }
                f(&k, &v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Map, MapAttr, MapType};

    #[test]
    fn arrays_are_walked_in_place_and_zero_slots_skipped() {
        let m = Map::create(&MapAttr::new(MapType::Array, 4, 8, 1000), None).unwrap();
        m.update_elem(&7u32.to_ne_bytes(), &[1; 8], 0).unwrap();
        m.update_elem(&999u32.to_ne_bytes(), &[2; 8], 0).unwrap();
        let mut seen = Vec::new();
        m.for_each_elem(true, |k, v| seen.push((k.to_vec(), v.to_vec())));
        assert_eq!(
            seen,
            vec![
                (7u32.to_ne_bytes().to_vec(), vec![1; 8]),
                (999u32.to_ne_bytes().to_vec(), vec![2; 8])
            ]
        );
        let mut all = 0;
        m.for_each_elem(false, |_, _| all += 1);
        assert_eq!(all, 1000);
    }

    #[test]
    fn hashes_walk_their_keys() {
        let m = Map::create(&MapAttr::new(MapType::Hash, 4, 4, 16), None).unwrap();
        for k in 0..5u32 {
            m.update_elem(&k.to_ne_bytes(), &(k * 10).to_ne_bytes(), 0)
                .unwrap();
        }
        let mut sum = 0;
        m.for_each_elem(true, |k, v| {
            assert_eq!(
                u32::from_ne_bytes(v.try_into().unwrap()),
                u32::from_ne_bytes(k.try_into().unwrap()) * 10
            );
            sum += 1;
        });
        assert_eq!(sum, 5);
    }
}
