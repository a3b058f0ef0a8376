//! The kernel's BPF map subsystem in user space, kernel-faithful down to the memory layout.
//!
//! What this crate owns, bottom layer first (a module imports only from the layers
//! before it; `crate::map` and the per-type modules meet through [`layout`]'s headers and
//! `MapDef`, the attributes every map has):
//! - [`uapi`]: map types, flags and update flags under the kernel's names and numbers;
//! - [`error`]: [`Errno`] (the kernel's errno values, ENOTSUPP = 524 included) and
//!   [`MapError`], which names the map: `map 'inner_a': key size 8 != 4: Invalid argument`;
//! - `attr`: [`MapAttr`] and the creation checks the types share; `def`: the attributes of a
//!   created map that every type's operations read; `cpus`: [`possible_cpus`];
//! - [`map`]: the [`Map`] object, the user-space element operations with their exact errno
//!   semantics, and `memlock` accounting; `create`: `BPF_MAP_CREATE` ([`Map::create`], the
//!   kernel's per-type checks in its order, [`check_create_attr`]);
//! - [`layout`]: the raw `#[repr(C)]` layouts programs address directly (array values at
//!   `map + 312 + idx * elem_size`, hash values at `elem + 48 + round_up(key_size, 8)`);
//! - [`htab`]: the hash family on fixed buckets with per-bucket locks and epoch-deferred frees;
//! - [`lpm_trie`]: LPM_TRIE — the kernel's trie node for node (intermediate nodes, the
//!   post-order `get_next_key`), lock-free readers, programs call [`lpm_trie::trie_lookup_elem`];
//! - [`queue`]: QUEUE and STACK;
//! - `ringbuf`: RINGBUF — the kernel's creation checks, record format and `memlock`;
//!   user-space element commands answer ENOTSUPP as in the kernel, records go through
//!   [`Map::ringbuf_output`] / [`Map::ringbuf_consume`], programs' through
//!   [`raw::bpf_ringbuf_reserve`] and the other helpers' entry points;
//! - [`meta`]: `inner_map_meta` and `map_meta_equal` for ARRAY_OF_MAPS / HASH_OF_MAPS,
//!   including `BPF_F_INNER_MAP` (and a deliberate, documented deviation for PERCPU_ARRAY);
//! - [`gen_lookup`](mod@gen_lookup): the inline instruction sequences of `map_gen_lookup`,
//!   with `__bpf_call_base`-relative call immediates;
//! - [`raw`]: `extern "C"` lookup/update/delete functions for programs (per type, with the
//!   ops tables), the redirect and perf-event targets programs reach, and [`pin`], the
//!   read-side guard a program run holds;
//! - [`registry`]: descriptors, ids and `map show`;
//! - [`btf`]: [`BtfObject`], the BTF a map holds (opaque here: an id and the blob).
//!
//! ```
//! use kbpf_maps::uapi::{BPF_ANY, BPF_F_INNER_MAP};
//! use kbpf_maps::{Errno, GenLookup, Map, MapAttr, MapType};
//!
//! // An outer array-of-maps whose template is a BPF_F_INNER_MAP array: inner arrays of any
//! // size fit, and lookups through the template are not inlined.
//! let template = Map::create(&MapAttr::new(MapType::Array, 4, 8, 1).flags(BPF_F_INNER_MAP), None)?;
//! let outer = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 4).name("outer"), Some(&template))?;
//! let inner = Map::create(&MapAttr::new(MapType::Array, 4, 8, 100).flags(BPF_F_INNER_MAP), None)?;
//! outer.update_inner_map(&0u32.to_ne_bytes(), &inner, BPF_ANY)?;
//! assert_eq!(outer.lookup_elem(&0u32.to_ne_bytes())?, inner.id().to_ne_bytes());
//! assert_eq!(outer.inner_map_meta().unwrap().gen_lookup(), GenLookup::NotSupported);
//!
//! // A plain inner array must match the template exactly.
//! let plain = Map::create(&MapAttr::new(MapType::Array, 4, 8, 100), None)?;
//! let err = outer.update_inner_map(&1u32.to_ne_bytes(), &plain, BPF_ANY).unwrap_err();
//! assert_eq!(err.errno, Errno::EINVAL);
//!
//! // What a program run does: pin, look up the inner map, then the value.
//! let _run = kbpf_maps::pin();
//! let key = 0u32.to_ne_bytes();
//! // SAFETY: live maps, 4-byte keys, guard held.
//! let value = unsafe {
//!     let inner_ptr = kbpf_maps::raw::bpf_map_lookup_elem(outer.as_ptr(), key.as_ptr().cast());
//!     kbpf_maps::raw::bpf_map_lookup_elem(inner_ptr, key.as_ptr().cast())
//! };
//! assert_eq!(value as usize, inner.as_ptr() as usize + 312);
//! # Ok::<(), kbpf_maps::MapError>(())
//! ```
#![deny(missing_docs)]

mod attr;
pub mod btf;
mod cpus;
mod create;
mod def;
pub mod devmap;
pub mod error;
pub mod gen_lookup;
pub mod htab;
pub mod jhash;
pub mod layout;
pub mod lpm_trie;
pub mod map;
pub mod meta;
pub mod perf_event;
pub mod queue;
pub mod raw;
pub mod registry;
mod ringbuf;
pub mod sock_maps;
pub mod stack_trace;
pub mod uapi;

pub use attr::MapAttr;
pub use btf::BtfObject;
pub use cpus::possible_cpus;
pub use create::check_create_attr;
pub use error::{CallImmError, Errno, MapError};
pub use gen_lookup::{
    GenLookup, call_base, call_imm, call_target, gen_lookup, lookup_fn, raw_function_addr,
    raw_function_name,
};
pub use kbpf_profile::MapsProfile;
pub use layout::{bpf_this_cpu_ptr, cpu_number_addr, current_cpu, set_current_cpu};
pub use map::{FdObject, Map, MapInfo, ProgRef, live_maps};
pub use meta::{InnerMapMeta, MapDesc};
pub use raw::{RunGuard, flush_deferred, pin};
pub use registry::Registry;
pub use uapi::MapType;
