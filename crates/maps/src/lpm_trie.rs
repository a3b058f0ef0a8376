//! BPF_MAP_TYPE_LPM_TRIE (`kernel/bpf/lpm_trie.c`): longest-prefix match on keys that are a
//! host-order `u32` prefix length followed by `data_size` bytes read as big-endian bits
//! (`struct bpf_lpm_trie_key_u8`).
//!
//! The structure is the kernel's, node for node: a binary trie of [`LpmTrieNode`]s whose
//! prefix lengths grow along every path, with *intermediate* nodes (`LPM_TREE_NODE_FLAG_IM`,
//! no value) where two prefixes diverge. Updates, deletes and `get_next_key` follow
//! `trie_update_elem`, `trie_delete_elem` and `trie_get_next_key` step by step, because the
//! shape of the trie is observable: `get_next_key` walks it in post-order (more specific
//! prefixes first), which is the order `bpftool map dump` prints, and a deleted node with two
//! children stays in place as an intermediate node.
//!
//! Concurrency is the kernel's as well: writers (update, delete) serialise on the map's lock
//! (the kernel's spinlock); readers — program lookups through [`trie_lookup_elem`], user
//! lookups, `get_next_key` — walk the child pointers without a lock inside an epoch guard
//! (the kernel's RCU read side). A node is published with a release store after it is fully
//! built; a replaced or removed node is freed through the epoch collector, so a value pointer
//! a program got stays valid for the rest of its run (it then holds the old value, as in the
//! kernel, where an update installs a new node rather than writing in place).
//!
//! Kernel facts kbpf mirrors (Linux 6.18): a full trie answers **ENOSPC** (not E2BIG) to an
//! insertion, while replacing an existing prefix still succeeds; BPF_NOEXIST on an existing
//! prefix is EEXIST and BPF_EXIST on a missing one ENOENT; a prefix length above
//! `8 * data_size` is EINVAL for update and delete, "no element" for lookup and "start from
//! the first key" for `get_next_key`; the data bits past the prefix length are stored as
//! given and returned by `get_next_key`; `memlock` counts `sizeof(struct lpm_trie_node) +
//! data_size + value_size` per element, intermediate nodes and the trie header not at all.

use std::alloc::Layout;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::def::MapDef;
use crate::error::Errno;
use crate::layout::BpfMap;
use crate::uapi::*;

mod api;
#[cfg(test)]
mod tests;

pub(crate) use api::trie_alloc_check;
pub use api::trie_lookup_elem;

/// `LPM_TREE_NODE_FLAG_IM`: an intermediate node (no value; never returned).
pub const LPM_TREE_NODE_FLAG_IM: u32 = 1;
/// kbpf's own flag bit: the node was allocated as an intermediate node, without room for a
/// value (a node that *became* intermediate by a delete keeps its value area).
const NODE_FLAG_NO_VALUE: u32 = 1 << 31;

/// `struct lpm_trie_node` (6.18): the key data follows at offset 24, the value right after
/// the data (so values are not aligned when `data_size` is not a multiple of 8, as in the
/// kernel).
#[repr(C)]
pub struct LpmTrieNode {
    /// `child[0]` (next bit 0) and `child[1]` (next bit 1).
    pub child: [AtomicPtr<LpmTrieNode>; 2],
    /// Prefix length in bits.
    pub prefixlen: u32,
    /// `LPM_TREE_NODE_FLAG_IM` (set by a delete while readers may look: atomic).
    pub flags: AtomicU32,
}

const NODE_SIZE: usize = LPM_TRIE_NODE_SIZE as usize;
const _: () = assert!(size_of::<LpmTrieNode>() == NODE_SIZE);

/// The map object of an LPM trie (`struct lpm_trie`, the part readers need): programs' map
/// pointers point here.
#[repr(C)]
pub struct BpfLpmTrie {
    /// Common prefix.
    pub map: BpfMap,
    /// The root node, or null when the trie is empty.
    pub root: AtomicPtr<LpmTrieNode>,
    /// `key_size - 4`.
    pub data_size: u32,
    /// `8 * data_size`.
    pub max_prefixlen: u32,
}

/// A key split into its prefix length and data bytes.
#[derive(Clone, Copy)]
struct Key<'a> {
    prefixlen: u32,
    data: &'a [u8],
}

impl Key<'_> {
    fn parse(key: &[u8]) -> Option<Key<'_>> {
        let (pl, data) = key.split_first_chunk::<4>()?;
        Some(Key {
            prefixlen: u32::from_ne_bytes(*pl),
            data,
        })
    }
}

/// `extract_bit`: bit `index` of `data`, bit 0 being the most significant bit of `data[0]`.
fn extract_bit(data: &[u8], index: u32) -> usize {
    ((data[index as usize / 8] >> (7 - index % 8)) & 1) as usize
}

/// `longest_prefix_match`: how many leading bits of `a` and `b` agree, at most `limit`.
fn prefix_match(a: &[u8], b: &[u8], limit: u32) -> u32 {
    let mut bits = 0u32;
    for (x, y) in a.iter().zip(b) {
        if bits >= limit {
            break;
        }
        let diff = x ^ y;
        if diff != 0 {
            return (bits + diff.leading_zeros()).min(limit);
        }
        bits += 8;
    }
    bits.min(limit)
}

/// # Safety
/// `n` must be a live node of a trie whose `data_size` is `ds`.
unsafe fn node_data<'a>(n: *const LpmTrieNode, ds: usize) -> &'a [u8] {
    // SAFETY: per the contract the node holds ds data bytes at offset 24.
    unsafe { std::slice::from_raw_parts((n as *const u8).add(NODE_SIZE), ds) }
}

/// # Safety
/// `n` must be a live node of a trie whose `data_size` is `ds`.
unsafe fn node_match(n: *const LpmTrieNode, ds: usize, k: Key<'_>) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { prefix_match(node_data(n, ds), k.data, (*n).prefixlen.min(k.prefixlen)) }
}

/// # Safety
/// `n` must be a live node.
unsafe fn is_im(n: *const LpmTrieNode) -> bool {
    // SAFETY: forwarded contract.
    unsafe { (*n).flags.load(Ordering::Acquire) & LPM_TREE_NODE_FLAG_IM != 0 }
}

/// `trie_lookup_elem` on a raw header: the value of the longest stored prefix of `k`, or
/// null.
///
/// # Safety
/// `t` must be a live trie header, and the caller must be inside an epoch guard for as long
/// as it uses the result; `k.data` must hold `data_size` bytes.
unsafe fn lookup_raw(t: &BpfLpmTrie, k: Key<'_>) -> *mut u8 {
    if k.prefixlen > t.max_prefixlen {
        return std::ptr::null_mut();
    }
    let ds = t.data_size as usize;
    let mut found: *mut LpmTrieNode = std::ptr::null_mut();
    let mut node = t.root.load(Ordering::Acquire);
    // SAFETY: every node reached from the root is alive while the caller is pinned (removed
    // nodes are freed through the epoch), and holds ds data bytes.
    unsafe {
        while !node.is_null() {
            let matchlen = node_match(node, ds, k);
            if matchlen == t.max_prefixlen {
                found = node;
                break;
            }
            if matchlen < (*node).prefixlen {
                break;
            }
            if !is_im(node) {
                found = node;
            }
            let bit = extract_bit(k.data, (*node).prefixlen);
            node = (*node).child[bit].load(Ordering::Acquire);
        }
        if found.is_null() {
            return std::ptr::null_mut();
        }
        (found as *mut u8).add(NODE_SIZE + ds)
    }
}

/// What freeing a node needs, copied into deferred closures (they never touch the map).
#[derive(Clone, Copy)]
struct NodeFree {
    data_size: usize,
    value_size: usize,
}

impl NodeFree {
    fn layout(self, with_value: bool) -> Option<Layout> {
        let size = NODE_SIZE + self.data_size + if with_value { self.value_size } else { 0 };
        Layout::from_size_align(size, 8).ok()
    }
}

/// Frees a node that no reader can reach any more.
///
/// # Safety
/// `n` came from [`LpmTrie::alloc_node`] of a trie with these sizes, is unreachable, and is
/// freed exactly once.
unsafe fn free_node(n: *mut LpmTrieNode, f: NodeFree) {
    // SAFETY: per the contract we own n; its layout follows from its NO_VALUE flag.
    unsafe {
        let with_value = (*n).flags.load(Ordering::Relaxed) & NODE_FLAG_NO_VALUE == 0;
        let Some(layout) = f.layout(with_value) else {
            return;
        };
        if cfg!(debug_assertions) {
            // Poison: a reader that wrongly outlived the node would see garbage.
            std::ptr::write_bytes(n as *mut u8, 0xa5, layout.size());
        }
        std::alloc::dealloc(n as *mut u8, layout);
    }
}

struct SendNode(*mut LpmTrieNode);
// SAFETY: an unlinked node is owned by its deferred free alone.
unsafe impl Send for SendNode {}

/// Rust-side state of an LPM trie.
pub(crate) struct LpmTrie {
    hdr: NonNull<BpfLpmTrie>,
    /// Taken by every writer (the kernel's `trie->lock`).
    lock: parking_lot::Mutex<()>,
    /// Elements (intermediate nodes not counted); changed under `lock`, read by `memlock`.
    n_entries: AtomicU32,
    max_entries: u32,
    free: NodeFree,
}

impl LpmTrie {
    /// `trie_alloc` after its checks: the header with an empty root.
    pub(crate) fn alloc(m: &MapDef, header: BpfMap) -> LpmTrie {
        let data_size = m.key_size - LPM_KEY_DATA_OFF;
        let hdr = Box::new(BpfLpmTrie {
            map: header,
            root: AtomicPtr::new(std::ptr::null_mut()),
            data_size,
            max_prefixlen: data_size * 8,
        });
        LpmTrie {
            hdr: NonNull::from(Box::leak(hdr)),
            lock: parking_lot::Mutex::new(()),
            n_entries: AtomicU32::new(0),
            max_entries: m.max_entries,
            free: NodeFree {
                data_size: data_size as usize,
                value_size: m.value_size as usize,
            },
        }
    }

    /// The raw map pointer (the header starts with `BpfMap`).
    pub(crate) fn header_ptr(&self) -> NonNull<BpfMap> {
        self.hdr.cast()
    }

    fn hdr(&self) -> &BpfLpmTrie {
        // SAFETY: the header lives as long as self (freed in free_all only).
        unsafe { self.hdr.as_ref() }
    }

    fn max_prefixlen(&self) -> u32 {
        self.hdr().max_prefixlen
    }

    /// Number of elements (`trie->n_entries`).
    pub(crate) fn count(&self) -> u32 {
        self.n_entries.load(Ordering::Relaxed)
    }

    /// `trie_mem_usage`: one node with data and value per element.
    pub(crate) fn mem_usage(&self) -> u64 {
        (NODE_SIZE + self.free.data_size + self.free.value_size) as u64 * self.count() as u64
    }

    /// `lpm_trie_node_alloc`: a node for `prefixlen`/`data` holding `value`, or an
    /// intermediate node without a value area when `value` is None.
    fn alloc_node(
        &self,
        value: Option<&[u8]>,
        prefixlen: u32,
        data: &[u8],
    ) -> Result<*mut LpmTrieNode, Errno> {
        let layout = self.free.layout(value.is_some()).ok_or(Errno::ENOMEM)?;
        // SAFETY: the layout is at least 24 bytes.
        let p = unsafe { std::alloc::alloc(layout) } as *mut LpmTrieNode;
        if p.is_null() {
            return Err(Errno::ENOMEM);
        }
        let flags = if value.is_some() {
            0
        } else {
            LPM_TREE_NODE_FLAG_IM | NODE_FLAG_NO_VALUE
        };
        let ds = self.free.data_size;
        // SAFETY: p is a fresh allocation of 24 + ds (+ value_size) bytes, 8-aligned; data
        // has ds bytes and value (if any) value_size bytes.
        unsafe {
            p.write(LpmTrieNode {
                child: [
                    AtomicPtr::new(std::ptr::null_mut()),
                    AtomicPtr::new(std::ptr::null_mut()),
                ],
                prefixlen,
                flags: AtomicU32::new(flags),
            });
            let d = (p as *mut u8).add(NODE_SIZE);
            std::ptr::copy_nonoverlapping(data.as_ptr(), d, ds);
            if let Some(v) = value {
                std::ptr::copy_nonoverlapping(v.as_ptr(), d.add(ds), self.free.value_size);
            }
        }
        Ok(p)
    }

    /// Frees `n` once no epoch guard that could have reached it remains (null is ignored).
    fn defer_free(&self, n: *mut LpmTrieNode) {
        if n.is_null() {
            return;
        }
        let (token, f) = (SendNode(n), self.free);
        crossbeam_epoch::pin().defer(move || {
            let token = token;
            // SAFETY: the node was unlinked under the lock; the epoch guarantees that no
            // reader still holds it.
            unsafe { free_node(token.0, f) }
        });
    }

    /// `trie_check_add_elem` (called with the lock held).
    fn check_add_elem(&self, flags: u64) -> Result<(), Errno> {
        if flags == BPF_EXIST {
            return Err(Errno::ENOENT);
        }
        let n = self.n_entries.load(Ordering::Relaxed);
        if n == self.max_entries {
            return Err(Errno::ENOSPC);
        }
        self.n_entries.store(n + 1, Ordering::Relaxed);
        Ok(())
    }

    /// `trie_update_elem` (user space and programs): `key` is `key_size` bytes, `value`
    /// `value_size` bytes.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Errno> {
        if flags > BPF_EXIST {
            return Err(Errno::EINVAL);
        }
        let k = Key::parse(key).ok_or(Errno::EINVAL)?;
        let ds = self.free.data_size;
        if k.prefixlen > self.max_prefixlen() || k.data.len() != ds {
            return Err(Errno::EINVAL);
        }
        if value.len() != self.free.value_size {
            return Err(Errno::EINVAL);
        }
        let new = self.alloc_node(Some(value), k.prefixlen, k.data)?;
        let guard = self.lock.lock();
        // SAFETY: the lock is held; new is a fresh, unpublished node.
        let r = unsafe { self.insert_locked(new, k, flags) };
        drop(guard);
        match r {
            Ok(replaced) => {
                self.defer_free(replaced);
                Ok(())
            }
            Err(e) => {
                // SAFETY: never published.
                unsafe { free_node(new, self.free) };
                Err(e)
            }
        }
    }

    /// The slot walk and linking of `trie_update_elem`; returns the node `new` replaced.
    ///
    /// # Safety
    /// The writer lock must be held; `new` must be a fresh node for `k`.
    unsafe fn insert_locked(
        &self,
        new: *mut LpmTrieNode,
        k: Key<'_>,
        flags: u64,
    ) -> Result<*mut LpmTrieNode, Errno> {
        let ds = self.free.data_size;
        let none = std::ptr::null_mut();
        // SAFETY: under the lock no node linked in the trie is freed; slots are the root or
        // child fields of such nodes.
        unsafe {
            let mut slot: *const AtomicPtr<LpmTrieNode> = &self.hdr().root;
            let mut matchlen = 0;
            let mut node = (*slot).load(Ordering::Acquire);
            while !node.is_null() {
                matchlen = node_match(node, ds, k);
                if (*node).prefixlen != matchlen || (*node).prefixlen == k.prefixlen {
                    break;
                }
                slot = &(*node).child[extract_bit(k.data, (*node).prefixlen)];
                node = (*slot).load(Ordering::Acquire);
            }
            if node.is_null() {
                self.check_add_elem(flags)?;
                (*slot).store(new, Ordering::Release);
                return Ok(none);
            }
            if (*node).prefixlen == matchlen {
                // The exact prefix: replace the node (an intermediate one becomes real).
                if !is_im(node) {
                    if flags == BPF_NOEXIST {
                        return Err(Errno::EEXIST);
                    }
                } else {
                    self.check_add_elem(flags)?;
                }
                for i in 0..2 {
                    let c = (*node).child[i].load(Ordering::Acquire);
                    (*new).child[i].store(c, Ordering::Relaxed);
                }
                (*slot).store(new, Ordering::Release);
                return Ok(node);
            }
            self.check_add_elem(flags)?;
            if matchlen == k.prefixlen {
                // The new prefix covers node: insert it as node's parent.
                let bit = extract_bit(node_data(node, ds), matchlen);
                (*new).child[bit].store(node, Ordering::Relaxed);
                (*slot).store(new, Ordering::Release);
                return Ok(none);
            }
            // The prefixes diverge at bit matchlen: an intermediate node takes both.
            let im = match self.alloc_node(None, matchlen, node_data(node, ds)) {
                Ok(p) => p,
                Err(e) => {
                    self.n_entries.fetch_sub(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
            let (c0, c1) = if extract_bit(k.data, matchlen) == 1 {
                (node, new)
            } else {
                (new, node)
            };
            (*im).child[0].store(c0, Ordering::Relaxed);
            (*im).child[1].store(c1, Ordering::Relaxed);
            (*slot).store(im, Ordering::Release);
            Ok(none)
        }
    }

    /// `trie_delete_elem`: removes the exact prefix `key`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Errno> {
        let k = Key::parse(key).ok_or(Errno::EINVAL)?;
        let ds = self.free.data_size;
        if k.prefixlen > self.max_prefixlen() || k.data.len() != ds {
            return Err(Errno::EINVAL);
        }
        let guard = self.lock.lock();
        let none = std::ptr::null_mut();
        // SAFETY: the lock is held (see insert_locked); unlinked nodes are freed through the
        // epoch after the lock is dropped.
        let (free_parent, free_node) = unsafe {
            let mut trim: *const AtomicPtr<LpmTrieNode> = &self.hdr().root;
            let mut trim2 = trim;
            let mut parent: *mut LpmTrieNode = none;
            let mut matchlen = 0;
            let mut node = (*trim).load(Ordering::Acquire);
            while !node.is_null() {
                matchlen = node_match(node, ds, k);
                if (*node).prefixlen != matchlen || (*node).prefixlen == k.prefixlen {
                    break;
                }
                parent = node;
                trim2 = trim;
                trim = &(*node).child[extract_bit(k.data, (*node).prefixlen)];
                node = (*trim).load(Ordering::Acquire);
            }
            if node.is_null()
                || (*node).prefixlen != k.prefixlen
                || (*node).prefixlen != matchlen
                || is_im(node)
            {
                return Err(Errno::ENOENT);
            }
            self.n_entries.fetch_sub(1, Ordering::Relaxed);
            let c0 = (*node).child[0].load(Ordering::Acquire);
            let c1 = (*node).child[1].load(Ordering::Acquire);
            if !c0.is_null() && !c1.is_null() {
                // Two children: the node stays, as an intermediate one.
                (*node)
                    .flags
                    .fetch_or(LPM_TREE_NODE_FLAG_IM, Ordering::Release);
                (none, none)
            } else if !parent.is_null() && is_im(parent) && c0.is_null() && c1.is_null() {
                // A leaf under an intermediate parent: the sibling takes the parent's slot.
                let p0 = (*parent).child[0].load(Ordering::Acquire);
                let sibling = if node == p0 {
                    (*parent).child[1].load(Ordering::Acquire)
                } else {
                    p0
                };
                (*trim2).store(sibling, Ordering::Release);
                (parent, node)
            } else {
                (*trim).store(if c0.is_null() { c1 } else { c0 }, Ordering::Release);
                (none, node)
            }
        };
        drop(guard);
        self.defer_free(free_parent);
        self.defer_free(free_node);
        Ok(())
    }

    /// User-space lookup (`BPF_MAP_LOOKUP_ELEM` runs the same longest-prefix match as
    /// programs): the value bytes.
    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, Errno> {
        let k = Key::parse(key).ok_or(Errno::EINVAL)?;
        if k.data.len() != self.free.data_size {
            return Err(Errno::EINVAL);
        }
        let _guard = crossbeam_epoch::pin();
        // SAFETY: pinned; k.data has data_size bytes.
        let v = unsafe { lookup_raw(self.hdr(), k) };
        if v.is_null() {
            return Err(Errno::ENOENT);
        }
        // SAFETY: a found node is a real node with value_size value bytes, alive while pinned.
        Ok(unsafe { std::slice::from_raw_parts(v, self.free.value_size) }.to_vec())
    }

    /// `trie_get_next_key`: the key after `key` in post-order; the first (leftmost) key when
    /// `key` is None, has a too long prefix or is not in the trie; ENOENT after the last.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, Errno> {
        let ds = self.free.data_size;
        let k = match key {
            Some(b) => Some(
                Key::parse(b)
                    .filter(|k| k.data.len() == ds)
                    .ok_or(Errno::EINVAL)?,
            ),
            None => None,
        };
        let _guard = crossbeam_epoch::pin();
        let root = self.hdr().root.load(Ordering::Acquire);
        if root.is_null() {
            return Err(Errno::ENOENT);
        }
        // SAFETY: pinned; every node reached from the root stays alive meanwhile.
        let next = unsafe {
            let search_root = match k {
                Some(k) if k.prefixlen <= self.max_prefixlen() => self.next_after(root, k)?,
                _ => Next::LeftmostOf(root),
            };
            match search_root {
                Next::Node(n) => n,
                Next::LeftmostOf(r) => leftmost(r),
            }
        };
        if next.is_null() {
            // Only a concurrent writer could leave an intermediate node without a real
            // descendant on the way; the kernel's walk would find nothing either.
            return Err(Errno::ENOENT);
        }
        let mut out = Vec::with_capacity(4 + ds);
        // SAFETY: next is a live node (pinned).
        unsafe {
            out.extend_from_slice(&(*next).prefixlen.to_ne_bytes());
            out.extend_from_slice(node_data(next, ds));
        }
        Ok(out)
    }

    /// The exact-match search and post-order step of `trie_get_next_key`.
    ///
    /// # Safety
    /// The caller must be pinned; `root` is the trie's non-null root.
    unsafe fn next_after(&self, root: *mut LpmTrieNode, k: Key<'_>) -> Result<Next, Errno> {
        let ds = self.free.data_size;
        let mut stack: Vec<*mut LpmTrieNode> = Vec::new();
        stack
            .try_reserve_exact(self.max_prefixlen() as usize + 1)
            .map_err(|_| Errno::ENOMEM)?;
        // SAFETY: forwarded contract.
        unsafe {
            let mut node = root;
            let mut matchlen = 0;
            while !node.is_null() {
                stack.push(node);
                matchlen = node_match(node, ds, k);
                if (*node).prefixlen != matchlen || (*node).prefixlen == k.prefixlen {
                    break;
                }
                node =
                    (*node).child[extract_bit(k.data, (*node).prefixlen)].load(Ordering::Acquire);
            }
            if node.is_null() || (*node).prefixlen != matchlen || is_im(node) {
                return Ok(Next::LeftmostOf(root));
            }
            // Found: the next node in post-order is the leftmost of the right sibling's
            // subtree, else the first real ancestor.
            let mut sp = stack.len() - 1;
            let mut node = stack[sp];
            while sp > 0 {
                let parent = stack[sp - 1];
                if (*parent).child[0].load(Ordering::Acquire) == node {
                    let right = (*parent).child[1].load(Ordering::Acquire);
                    if !right.is_null() {
                        return Ok(Next::LeftmostOf(right));
                    }
                }
                if !is_im(parent) {
                    return Ok(Next::Node(parent));
                }
                node = parent;
                sp -= 1;
            }
            Err(Errno::ENOENT)
        }
    }

    /// `trie_free`: frees every node and the header (the map is unreachable).
    pub(crate) fn free_all(&self) {
        let mut stack = vec![self.hdr().root.swap(std::ptr::null_mut(), Ordering::AcqRel)];
        while let Some(n) = stack.pop() {
            if n.is_null() {
                continue;
            }
            // SAFETY: the map is being dropped; every linked node is reachable once and freed
            // once (unlinked nodes belong to their deferred frees).
            unsafe {
                stack.push((*n).child[0].load(Ordering::Acquire));
                stack.push((*n).child[1].load(Ordering::Acquire));
                free_node(n, self.free);
            }
        }
        // SAFETY: hdr came from Box::leak in alloc and is freed once, here.
        unsafe { drop(Box::from_raw(self.hdr.as_ptr())) };
    }
}

/// Where `trie_get_next_key` continues.
enum Next {
    /// This node is the answer.
    Node(*mut LpmTrieNode),
    /// The first post-order node of this subtree is (`find_leftmost`).
    LeftmostOf(*mut LpmTrieNode),
}

/// `find_leftmost`: the first real node in post-order under `root` (null only if a
/// concurrent writer emptied the path).
///
/// # Safety
/// The caller must be pinned and `root` reachable from a live trie.
unsafe fn leftmost(root: *mut LpmTrieNode) -> *mut LpmTrieNode {
    let mut next = std::ptr::null_mut();
    let mut node = root;
    // SAFETY: forwarded contract.
    unsafe {
        while !node.is_null() {
            if is_im(node) {
                node = (*node).child[0].load(Ordering::Acquire);
            } else {
                next = node;
                node = (*node).child[0].load(Ordering::Acquire);
                if node.is_null() {
                    node = (*next).child[1].load(Ordering::Acquire);
                }
            }
        }
    }
    next
}
