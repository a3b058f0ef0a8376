//! Loading a parsed BPF object ([`kbpf_object::BpfObject`]) into kbpf: live maps in a
//! [`kbpf_maps::Registry`] and programs relocated into exactly the form the kernel's
//! `BPF_PROG_LOAD` receives (`ld_imm64` with `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE`
//! and a map fd), ready for the verifier. This is libbpf's `bpf_object__load` minus the
//! program load itself.
//!
//! - [`load`]: [`load_object`], [`LoadOptions`] (map reuse, inner maps), [`LoadedObject`];
//! - [`reloc`]: map relocations of one program ([`relocate_program`], [`LoadedProgram`]);
//! - [`error`]: [`LoadError`], naming the map/section/program and carrying the errno;
//! - [`global_funcs`]: global functions' prototypes for the verifier
//!   (`btf_prepare_func_args`);
//! - [`kconfig`]: the values of `__kconfig` externs from the host's kernel config (libbpf's
//!   `bpf_object__resolve_externs`);
//! - [`kfunc`]: kernel-function externs resolved against the kernel's BTF (libbpf's
//!   `RELO_EXTERN_CALL`);
//! - `btf`: the object's BTF loaded as a kernel object (checked like `BPF_BTF_LOAD`, with
//!   libbpf's fallback to no BTF) and the type ids each map is created with
//!   ([`LoadedObject::btf`]).
//!
//! # Load order, and why
//!
//! Maps are created in the object's map order (legacy `maps`, then `.maps` in BTF order,
//! then global data), as libbpf's `bpf_object__create_maps` does, with two rules that the
//! kernel's map-in-map design forces:
//!
//! 1. **Inner templates before their outer.** `BPF_MAP_CREATE` of an ARRAY_OF_MAPS /
//!    HASH_OF_MAPS needs an `inner_map_fd`: the kernel copies that map's shape into the
//!    outer's `inner_map_meta` (`bpf_map_meta_alloc`) and never uses the map itself again.
//!    So the `__array(values, …)` template is created right before its outer, named
//!    `<outer>.inner`, and its descriptor is closed (the template freed) right after — as
//!    libbpf does. An outer without a template needs [`LoadOptions::inner_map`].
//! 2. **Initial slots last.** `.values = { [0] = &inner_a }` can name any map of the
//!    object, including ones defined after the outer, and every slot is checked against
//!    the outer's `inner_map_meta` when written. Writing all slots after every map exists
//!    (with `BPF_MAP_UPDATE_ELEM` of the inner map's fd) makes the result independent of
//!    definition order. PROG_ARRAY slots name programs, which exist only after program
//!    load, so they are returned in [`LoadedObject::pending_prog_slots`].
//!
//! Global data maps (`.data`, `.rodata*`, `.bss`) get their initial contents written right
//! after creation; `.rodata*` maps are then frozen by libbpf (`BPF_MAP_FREEZE`), which kbpf
//! records in [`LoadedMap::frozen`]. A map reused from [`LoadOptions::reuse_map`] (bpftool's
//! `map name NAME pinned PATH`) is checked like libbpf's `map_is_reuse_compat` and then left
//! exactly as it is: no contents, no slots. On any failure every descriptor opened so far is
//! closed again.
//!
//! ```
//! use kbpf_loader::{LoadOptions, load_object};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/objects/aom_inner_map.bpf.o");
//! let obj = kbpf_object::BpfObject::open(path)?;
//! let reg = kbpf_maps::Registry::new();
//! let loaded = load_object(&obj, &reg, &LoadOptions::default())?;
//! let outer = &loaded.map("outer").unwrap().map;
//! let slot0 = u32::from_ne_bytes(outer.lookup_elem(&0u32.to_ne_bytes())?.try_into().unwrap());
//! assert_eq!(slot0, loaded.map("inner_a").unwrap().map.id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod btf;
pub mod error;
pub mod global_funcs;
pub mod kconfig;
pub mod kfunc;
pub mod load;
pub mod reloc;

pub use error::LoadError;
pub use load::{LoadOptions, LoadedMap, LoadedObject, MapSelector, ProgSlot, load_object};
pub use reloc::{LoadedProgram, relocate_program};
