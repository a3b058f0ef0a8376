//! The trie behind an LPM_TRIE map object.

use crate::error::{Errno, MapError};
use crate::lpm_trie::LpmTrie;
use crate::map::{MapInner, Storage};

impl MapInner {
    /// The trie of an LPM_TRIE map.
    pub(crate) fn lpm_trie(&self) -> Result<&LpmTrie, MapError> {
        match &self.storage {
            Storage::LpmTrie(t) => Ok(t),
            _ => Err(MapError::new(
                &self.name,
                Errno::EINVAL,
                format!("{} is not an lpm_trie", self.map_type),
            )),
        }
    }
}
