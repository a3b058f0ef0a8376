//! kbpf-profile: the **kernel profile**, one value carrying everything kbpf mirrors that
//! differs between Linux builds and versions.
//!
//! kbpf promises the kernel's behaviour, but "the kernel" is not one thing: the size of
//! `struct bpf_htab` depends on the build's config (it moves hash-map `memlock`), newer
//! verifiers type an outer map-in-map lookup as `map_ptr_or_null` where older ones say
//! `map_value_or_null`, the program tag was SHA-1 before it was SHA-256, and so on. Every
//! such fact lives here, with where it came from ([`Origin`]), and the rest of kbpf reads it
//! from a profile instead of a constant:
//! - maps: [`MapsProfile`] (where array values start, `bpf_htab`'s size for `memlock`,
//!   `htab_elem`'s key and LRU-reference offsets), which map types exist;
//! - verifier: [`VerifierBehaviour`] (the inner-map lookup's type, which helpers exist);
//! - rewrite: [`RewriteBehaviour`] (tag hash, the cmpxchg zero-extension) and the map
//!   layout for inlined lookups;
//! - run: [`CtxLayout`], the kernel-internal context structs programs are rewritten to read.
//!
//! Three sources ([`KernelProfile::builtin`], [`KernelProfile::from_btf`], and the live
//! kernel through `kbpf_kernel::host_profile`, which adds `bpf()` probes to the BTF).
//! Layout facts come from BTF; behaviours that BTF cannot show come from probes, and a
//! BTF-only profile keeps the built-in behaviour, marked as such.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;

use kbpf_btf::{Btf, BtfError, BtfKind, kind};
use serde::{Deserialize, Serialize};

/// The upstream kernel the built-in profile follows.
pub const BUILTIN_KERNEL: &str = "Linux 6.18 (x86-64)";

/// Where one profile field's value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Origin {
    /// kbpf's built-in default ([`BUILTIN_KERNEL`]).
    Builtin,
    /// Read from a vmlinux BTF: the file and what was read (`sizeof(struct bpf_htab)`).
    Btf {
        /// The BTF file.
        file: String,
        /// The C expression the value is.
        what: String,
    },
    /// Observed on the live kernel through `bpf()`.
    Probe {
        /// What the probe did and saw.
        what: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin => write!(f, "built-in ({BUILTIN_KERNEL})"),
            Origin::Btf { file, what } => write!(f, "btf {file}: {what}"),
            Origin::Probe { what } => write!(f, "probe: {what}"),
        }
    }
}

/// The kernel's map object layouts, as far as kbpf mirrors them (offsets in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapsProfile {
    /// `offsetof(struct bpf_array, value)`: where array values (and per-CPU/fd-array
    /// pointer slots) start; the inlined array lookup adds it to the map address, and it is
    /// the header part of an array's `memlock`.
    pub bpf_array_value_off: u32,
    /// `sizeof(struct bpf_htab)`: the header part of a hash map's `memlock`. It depends on
    /// the build's config (lock debugging, per-CPU counters), not only on the version.
    pub sizeof_bpf_htab: u32,
    /// `sizeof(struct bucket)`: per-bucket `memlock`.
    pub sizeof_htab_bucket: u32,
    /// `offsetof(struct htab_elem, key)`: where a hash element's key starts; the value
    /// follows at `key + round_up(key_size, 8)`, which inlined hash lookups add.
    pub htab_elem_key_off: u32,
    /// `offsetof(struct htab_elem, lru_node) + offsetof(struct bpf_lru_node, ref)`: the
    /// byte an inlined LRU lookup sets.
    pub htab_elem_lru_ref_off: u32,
    /// `sizeof(struct bpf_queue_stack)`: the header part of a queue's or stack's `memlock`.
    pub sizeof_bpf_queue_stack: u32,
    /// `sizeof(struct bpf_ringbuf_map)`: the header part of a ring buffer's `memlock`.
    pub sizeof_bpf_ringbuf_map: u32,
    /// `__MAX_BPF_MAP_TYPE`: map types at or above it do not exist (EINVAL on create).
    pub map_type_count: u32,
    /// `offsetof(struct xsk_map, xsk_map)`: where an XSKMAP's socket pointers start, which
    /// the inlined XSKMAP lookup (`xsk_map_gen_lookup`) adds to the map address. (Profiles
    /// saved before the field existed read the built-in value.)
    #[serde(default = "builtin::xsk_map_ptrs_off")]
    pub xsk_map_ptrs_off: u32,
    /// `sizeof(struct bpf_stab)`: the header part of a SOCKMAP's `memlock`.
    #[serde(default = "builtin::sizeof_bpf_stab")]
    pub sizeof_bpf_stab: u32,
    /// `sizeof(struct bpf_shtab)`: the header part of a SOCKHASH's `memlock`.
    #[serde(default = "builtin::sizeof_bpf_shtab")]
    pub sizeof_bpf_shtab: u32,
    /// `sizeof(struct bpf_shtab_bucket)`: per-bucket SOCKHASH `memlock`.
    #[serde(default = "builtin::sizeof_bpf_shtab_bucket")]
    pub sizeof_bpf_shtab_bucket: u32,
    /// `sizeof(struct reuseport_array)`: the header part of a REUSEPORT_SOCKARRAY's
    /// `memlock`.
    #[serde(default = "builtin::sizeof_reuseport_array")]
    pub sizeof_reuseport_array: u32,
    /// `sizeof(struct bpf_stack_map)`: the header part of a STACK_TRACE map's `memlock`.
    #[serde(default = "builtin::sizeof_bpf_stack_map")]
    pub sizeof_bpf_stack_map: u32,
    /// `sizeof(struct stack_map_bucket)`: per-entry STACK_TRACE `memlock` (with the value).
    #[serde(default = "builtin::sizeof_stack_map_bucket")]
    pub sizeof_stack_map_bucket: u32,
}

/// The built-in values of the fields a saved profile may lack (added after it was saved).
mod builtin {
    use super::MapsProfile;
    pub(super) fn xsk_map_ptrs_off() -> u32 {
        MapsProfile::BUILTIN.xsk_map_ptrs_off
    }
    pub(super) fn sizeof_bpf_stab() -> u32 {
        MapsProfile::BUILTIN.sizeof_bpf_stab
    }
    pub(super) fn sizeof_bpf_shtab() -> u32 {
        MapsProfile::BUILTIN.sizeof_bpf_shtab
    }
    pub(super) fn sizeof_bpf_shtab_bucket() -> u32 {
        MapsProfile::BUILTIN.sizeof_bpf_shtab_bucket
    }
    pub(super) fn sizeof_reuseport_array() -> u32 {
        MapsProfile::BUILTIN.sizeof_reuseport_array
    }
    pub(super) fn sizeof_bpf_stack_map() -> u32 {
        MapsProfile::BUILTIN.sizeof_bpf_stack_map
    }
    pub(super) fn sizeof_stack_map_bucket() -> u32 {
        MapsProfile::BUILTIN.sizeof_stack_map_bucket
    }
}

/// The kernel-internal context structs, where programs' context accesses are rewritten to
/// read (offsets in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtxLayout {
    /// `offsetof(struct xdp_buff, data)`.
    pub xdp_buff_data: u32,
    /// `offsetof(struct xdp_buff, data_end)`.
    pub xdp_buff_data_end: u32,
    /// `offsetof(struct xdp_buff, data_meta)`.
    pub xdp_buff_data_meta: u32,
    /// `offsetof(struct xdp_buff, data_hard_start)`.
    pub xdp_buff_data_hard_start: u32,
    /// `offsetof(struct xdp_buff, rxq)`.
    pub xdp_buff_rxq: u32,
    /// `offsetof(struct xdp_buff, txq)`.
    pub xdp_buff_txq: u32,
    /// `offsetof(struct xdp_buff, frame_sz)`.
    pub xdp_buff_frame_sz: u32,
    /// `offsetof(struct xdp_rxq_info, dev)`.
    pub xdp_rxq_info_dev: u32,
    /// `offsetof(struct xdp_rxq_info, queue_index)`.
    pub xdp_rxq_info_queue_index: u32,
    /// `offsetof(struct xdp_txq_info, dev)`.
    pub xdp_txq_info_dev: u32,
    /// `offsetof(struct net_device, ifindex)`: it moves with the build's config.
    pub net_device_ifindex: u32,
    /// `sizeof(struct sk_buff)`: `__sk_buff` accesses read it at offsets kbpf's run-time
    /// `sk_buff` mirrors (see `kbpf_rewrite::ctx::skb`).
    pub sizeof_sk_buff: u32,
}

/// How the type of an outer map-in-map lookup's result is written before its NULL check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InnerMapLookup {
    /// `map_value_or_null`, becoming `map_ptr` after the check (Linux 6.12, 6.18 upstream).
    MapValue,
    /// `map_ptr_or_null` straight away (newer verifiers; some 6.18 builds carry it).
    MapPtr,
}

impl InnerMapLookup {
    /// The name `reg_type_str` prints for the not-yet-checked result (without `_or_null`).
    pub fn type_name(self) -> &'static str {
        match self {
            InnerMapLookup::MapValue => "map_value",
            InnerMapLookup::MapPtr => "map_ptr",
        }
    }
}

/// The verifier's build-dependent behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierBehaviour {
    /// The register type of an outer map-in-map lookup's result.
    pub inner_map_lookup: InnerMapLookup,
    /// `__BPF_FUNC_MAX_ID`: helper ids at or above it are `invalid func unknown#N`.
    pub helper_count: u32,
}

/// `bpf_prog_calc_tag`'s hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagHash {
    /// SHA-1 (up to Linux 6.17).
    Sha1,
    /// SHA-256 (Linux 6.18).
    Sha256,
}

impl TagHash {
    /// The first 8 bytes of the hash of `bytes` (the tag, once the caller has zeroed what
    /// `bpf_prog_calc_tag` zeroes).
    pub fn tag_of(self, bytes: &[u8]) -> [u8; 8] {
        use sha2::Digest as _;
        let mut tag = [0u8; 8];
        match self {
            TagHash::Sha1 => tag.copy_from_slice(&sha1::Sha1::digest(bytes)[..8]),
            TagHash::Sha256 => tag.copy_from_slice(&sha2::Sha256::digest(bytes)[..8]),
        }
        tag
    }
}

/// The rewrite's build-dependent behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewriteBehaviour {
    /// The program tag's hash.
    pub tag_hash: TagHash,
    /// A 32-bit `cmpxchg`'s R0 gets an explicit `w0 = w0` (`opt_subreg_zext_lo32_rnd_hi32`).
    pub zext_cmpxchg32: bool,
}

impl MapsProfile {
    /// The built-in profile's maps ([`BUILTIN_KERNEL`]; the socket maps' sizes, added
    /// later, were measured on 6.18.44-fc-v1300).
    pub const BUILTIN: MapsProfile = MapsProfile {
        bpf_array_value_off: 312,
        sizeof_bpf_htab: 896,
        sizeof_htab_bucket: 16,
        htab_elem_key_off: 48,
        htab_elem_lru_ref_off: 35,
        sizeof_bpf_queue_stack: 312,
        sizeof_bpf_ringbuf_map: 304,
        map_type_count: 34,
        xsk_map_ptrs_off: 304,
        sizeof_bpf_stab: 376,
        sizeof_bpf_shtab: 384,
        sizeof_bpf_shtab_bucket: 16,
        sizeof_reuseport_array: 296,
        sizeof_bpf_stack_map: 320,
        sizeof_stack_map_bucket: 16,
    };
}

impl CtxLayout {
    /// The built-in profile's context structs ([`BUILTIN_KERNEL`]).
    pub const BUILTIN: CtxLayout = CtxLayout {
        xdp_buff_data: 0,
        xdp_buff_data_end: 8,
        xdp_buff_data_meta: 16,
        xdp_buff_data_hard_start: 24,
        xdp_buff_rxq: 32,
        xdp_buff_txq: 40,
        xdp_buff_frame_sz: 48,
        xdp_rxq_info_dev: 0,
        xdp_rxq_info_queue_index: 8,
        xdp_txq_info_dev: 0,
        net_device_ifindex: 224,
        sizeof_sk_buff: 224,
    };
}

impl VerifierBehaviour {
    /// The built-in profile's verifier behaviour ([`BUILTIN_KERNEL`]).
    pub const BUILTIN: VerifierBehaviour = VerifierBehaviour {
        inner_map_lookup: InnerMapLookup::MapValue,
        helper_count: 212,
    };
}

impl RewriteBehaviour {
    /// The built-in profile's rewrite behaviour ([`BUILTIN_KERNEL`]).
    pub const BUILTIN: RewriteBehaviour = RewriteBehaviour {
        tag_hash: TagHash::Sha256,
        zext_cmpxchg32: true,
    };
}

impl Default for MapsProfile {
    fn default() -> Self {
        Self::BUILTIN
    }
}

impl Default for CtxLayout {
    fn default() -> Self {
        Self::BUILTIN
    }
}

impl Default for VerifierBehaviour {
    fn default() -> Self {
        Self::BUILTIN
    }
}

impl Default for RewriteBehaviour {
    fn default() -> Self {
        Self::BUILTIN
    }
}

/// Everything kbpf mirrors that differs between kernel builds, with each field's origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelProfile {
    /// What this profile describes (`built-in`, a BTF file, `host 6.18.44-…`).
    pub name: String,
    /// `uname -r` of the kernel it was taken from, where known.
    pub kernel_release: Option<String>,
    /// The vmlinux BTF the layouts were read from, where they were: CO-RE relocations
    /// resolve against it (libbpf's `btf_custom_path`; without one, the running kernel's).
    #[serde(default)]
    pub btf_path: Option<String>,
    /// Map object layouts and map types.
    pub maps: MapsProfile,
    /// `__MAX_BPF_PROG_TYPE`.
    pub prog_type_count: u32,
    /// Context structs.
    pub ctx: CtxLayout,
    /// Verifier behaviour.
    pub verifier: VerifierBehaviour,
    /// Rewrite behaviour.
    pub rewrite: RewriteBehaviour,
    /// Where each field came from, by dotted field name (`maps.sizeof_bpf_htab`).
    pub origins: BTreeMap<String, Origin>,
}

/// Why a profile could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The BTF file could not be read.
    #[error("{file}: {err}")]
    Io {
        /// The file.
        file: String,
        /// The error.
        err: std::io::Error,
    },
    /// The BTF is malformed.
    #[error("{file}: {err}")]
    Btf {
        /// The file.
        file: String,
        /// The error.
        err: BtfError,
    },
    /// The BTF lacks a type or member the profile needs (not a vmlinux BTF?).
    #[error("{file}: no {what} (is this a vmlinux BTF?)")]
    Missing {
        /// The file.
        file: String,
        /// What was looked for.
        what: String,
    },
    /// A profile file (JSON) is malformed.
    #[error("{file}: {err}")]
    Json {
        /// The file.
        file: String,
        /// The error.
        err: serde_json::Error,
    },
}

/// Field names (as in [`KernelProfile::origins`]) and their built-in values, in one place.
const MAP_FIELDS: [(&str, &str); 15] = [
    ("bpf_array_value_off", "offsetof(struct bpf_array, value)"),
    ("sizeof_bpf_htab", "sizeof(struct bpf_htab)"),
    ("sizeof_htab_bucket", "sizeof(struct bucket)"),
    ("htab_elem_key_off", "offsetof(struct htab_elem, key)"),
    (
        "htab_elem_lru_ref_off",
        "offsetof(struct htab_elem, lru_node) + offsetof(struct bpf_lru_node, ref)",
    ),
    ("sizeof_bpf_queue_stack", "sizeof(struct bpf_queue_stack)"),
    ("sizeof_bpf_ringbuf_map", "sizeof(struct bpf_ringbuf_map)"),
    ("map_type_count", "__MAX_BPF_MAP_TYPE"),
    ("xsk_map_ptrs_off", "offsetof(struct xsk_map, xsk_map)"),
    ("sizeof_bpf_stab", "sizeof(struct bpf_stab)"),
    ("sizeof_bpf_shtab", "sizeof(struct bpf_shtab)"),
    ("sizeof_bpf_shtab_bucket", "sizeof(struct bpf_shtab_bucket)"),
    ("sizeof_reuseport_array", "sizeof(struct reuseport_array)"),
    ("sizeof_bpf_stack_map", "sizeof(struct bpf_stack_map)"),
    ("sizeof_stack_map_bucket", "sizeof(struct stack_map_bucket)"),
];

impl KernelProfile {
    /// The built-in profile: [`BUILTIN_KERNEL`] as the project's reference build
    /// (6.18.44, `-fc-v1098`) has it.
    pub fn builtin() -> KernelProfile {
        let mut p = KernelProfile {
            name: format!("built-in ({BUILTIN_KERNEL})"),
            kernel_release: None,
            btf_path: None,
            maps: MapsProfile::BUILTIN,
            prog_type_count: 33,
            ctx: CtxLayout::BUILTIN,
            verifier: VerifierBehaviour::BUILTIN,
            rewrite: RewriteBehaviour::BUILTIN,
            origins: BTreeMap::new(),
        };
        for f in Self::field_names() {
            p.origins.insert(f, Origin::Builtin);
        }
        p
    }

    /// Every field's dotted name, in display order.
    pub fn field_names() -> Vec<String> {
        let mut v: Vec<String> = MAP_FIELDS
            .iter()
            .map(|(f, _)| format!("maps.{f}"))
            .collect();
        v.push("prog_type_count".into());
        for (f, _) in CTX_FIELDS {
            v.push(format!("ctx.{f}"));
        }
        v.push("verifier.inner_map_lookup".into());
        v.push("verifier.helper_count".into());
        v.push("rewrite.tag_hash".into());
        v.push("rewrite.zext_cmpxchg32".into());
        v
    }

    /// The built-in profile with every layout fact read from a vmlinux BTF file
    /// (`--kernel-btf FILE`). Behaviours BTF cannot show keep their built-in values and
    /// origin.
    pub fn from_btf_file(path: &str) -> Result<KernelProfile, ProfileError> {
        let data = std::fs::read(path).map_err(|err| ProfileError::Io {
            file: path.into(),
            err,
        })?;
        let btf = Btf::parse(&data).map_err(|err| ProfileError::Btf {
            file: path.into(),
            err,
        })?;
        let mut p = Self::from_btf(&btf, path)?;
        p.name = format!("btf {path}");
        Ok(p)
    }

    /// The built-in profile with every layout fact read from `btf` (named `file` in the
    /// origins).
    pub fn from_btf(btf: &Btf, file: &str) -> Result<KernelProfile, ProfileError> {
        let mut p = Self::builtin();
        p.btf_path = Some(file.to_owned());
        let missing = |what: &str| ProfileError::Missing {
            file: file.into(),
            what: what.into(),
        };
        let size = |name: &str| -> Result<u32, ProfileError> {
            btf.struct_size(name)
                .map(|s| s as u32)
                .ok_or_else(|| missing(&format!("struct {name}")))
        };
        let off = |st: &str, path: &str| -> Result<u32, ProfileError> {
            let id = btf
                .find_by_name_kind(st, kind::STRUCT)
                .ok_or_else(|| missing(&format!("struct {st}")))?;
            match btf.member_offset(id, path) {
                Ok(Some((o, _))) => Ok(o),
                _ => Err(missing(&format!("member {st}.{path}"))),
            }
        };
        let enum_value = |ename: &str, name: &str| -> Result<u32, ProfileError> {
            btf.types()
                .iter()
                .find_map(|t| match &t.kind {
                    BtfKind::Enum { values, .. } if t.name == ename => values
                        .iter()
                        .find(|e| e.name == name)
                        .map(|e| e.value as u32),
                    _ => None,
                })
                .ok_or_else(|| missing(&format!("enum {ename}::{name}")))
        };
        p.maps = MapsProfile {
            bpf_array_value_off: off("bpf_array", "value")?,
            sizeof_bpf_htab: size("bpf_htab")?,
            sizeof_htab_bucket: size("bucket")?,
            htab_elem_key_off: off("htab_elem", "key")?,
            htab_elem_lru_ref_off: off("htab_elem", "lru_node")? + off("bpf_lru_node", "ref")?,
            sizeof_bpf_queue_stack: size("bpf_queue_stack")?,
            sizeof_bpf_ringbuf_map: size("bpf_ringbuf_map")?,
            map_type_count: enum_value("bpf_map_type", "__MAX_BPF_MAP_TYPE")?,
            xsk_map_ptrs_off: off("xsk_map", "xsk_map")?,
            sizeof_bpf_stab: size("bpf_stab")?,
            sizeof_bpf_shtab: size("bpf_shtab")?,
            sizeof_bpf_shtab_bucket: size("bpf_shtab_bucket")?,
            sizeof_reuseport_array: size("reuseport_array")?,
            sizeof_bpf_stack_map: size("bpf_stack_map")?,
            sizeof_stack_map_bucket: size("stack_map_bucket")?,
        };
        for (f, what) in MAP_FIELDS {
            p.set_origin(&format!("maps.{f}"), file, what);
        }
        p.ctx = CtxLayout {
            xdp_buff_data: off("xdp_buff", "data")?,
            xdp_buff_data_end: off("xdp_buff", "data_end")?,
            xdp_buff_data_meta: off("xdp_buff", "data_meta")?,
            xdp_buff_data_hard_start: off("xdp_buff", "data_hard_start")?,
            xdp_buff_rxq: off("xdp_buff", "rxq")?,
            xdp_buff_txq: off("xdp_buff", "txq")?,
            xdp_buff_frame_sz: off("xdp_buff", "frame_sz")?,
            xdp_rxq_info_dev: off("xdp_rxq_info", "dev")?,
            xdp_rxq_info_queue_index: off("xdp_rxq_info", "queue_index")?,
            xdp_txq_info_dev: off("xdp_txq_info", "dev")?,
            net_device_ifindex: off("net_device", "ifindex")?,
            sizeof_sk_buff: size("sk_buff")?,
        };
        for (f, what) in CTX_FIELDS {
            p.set_origin(&format!("ctx.{f}"), file, what);
        }
        p.prog_type_count = enum_value("bpf_prog_type", "__MAX_BPF_PROG_TYPE")?;
        p.set_origin("prog_type_count", file, "__MAX_BPF_PROG_TYPE");
        p.verifier.helper_count = enum_value("bpf_func_id", "__BPF_FUNC_MAX_ID")?;
        p.set_origin("verifier.helper_count", file, "__BPF_FUNC_MAX_ID");
        Ok(p)
    }

    fn set_origin(&mut self, field: &str, file: &str, what: &str) {
        self.origins.insert(
            field.into(),
            Origin::Btf {
                file: file.into(),
                what: what.into(),
            },
        );
    }

    /// Records that `field` was observed by a probe.
    pub fn set_probed(&mut self, field: &str, what: impl Into<String>) {
        self.origins
            .insert(field.into(), Origin::Probe { what: what.into() });
    }

    /// Reads a profile saved as JSON (`kbpf kernel profile --json > FILE`).
    pub fn from_json_file(path: &str) -> Result<KernelProfile, ProfileError> {
        let data = std::fs::read(path).map_err(|err| ProfileError::Io {
            file: path.into(),
            err,
        })?;
        serde_json::from_slice(&data).map_err(|err| ProfileError::Json {
            file: path.into(),
            err,
        })
    }

    /// Each field as `(dotted name, value text)`, in [`Self::field_names`] order.
    pub fn values(&self) -> Vec<(String, String)> {
        let m = &self.maps;
        let c = &self.ctx;
        let maps = [
            m.bpf_array_value_off,
            m.sizeof_bpf_htab,
            m.sizeof_htab_bucket,
            m.htab_elem_key_off,
            m.htab_elem_lru_ref_off,
            m.sizeof_bpf_queue_stack,
            m.sizeof_bpf_ringbuf_map,
            m.map_type_count,
            m.xsk_map_ptrs_off,
            m.sizeof_bpf_stab,
            m.sizeof_bpf_shtab,
            m.sizeof_bpf_shtab_bucket,
            m.sizeof_reuseport_array,
            m.sizeof_bpf_stack_map,
            m.sizeof_stack_map_bucket,
        ];
        let ctx = [
            c.xdp_buff_data,
            c.xdp_buff_data_end,
            c.xdp_buff_data_meta,
            c.xdp_buff_data_hard_start,
            c.xdp_buff_rxq,
            c.xdp_buff_txq,
            c.xdp_buff_frame_sz,
            c.xdp_rxq_info_dev,
            c.xdp_rxq_info_queue_index,
            c.xdp_txq_info_dev,
            c.net_device_ifindex,
            c.sizeof_sk_buff,
        ];
        let mut vals: Vec<String> = maps.iter().map(u32::to_string).collect();
        vals.push(self.prog_type_count.to_string());
        vals.extend(ctx.iter().map(u32::to_string));
        vals.push(self.verifier.inner_map_lookup.type_name().to_owned() + "_or_null");
        vals.push(self.verifier.helper_count.to_string());
        vals.push(
            match self.rewrite.tag_hash {
                TagHash::Sha1 => "sha1",
                TagHash::Sha256 => "sha256",
            }
            .to_owned(),
        );
        vals.push(self.rewrite.zext_cmpxchg32.to_string());
        Self::field_names().into_iter().zip(vals).collect()
    }

    /// The fields whose values differ from `other`'s: `(name, ours, theirs)`.
    pub fn diff(&self, other: &KernelProfile) -> Vec<(String, String, String)> {
        self.values()
            .into_iter()
            .zip(other.values())
            .filter(|((_, a), (_, b))| a != b)
            .map(|((n, a), (_, b))| (n, a, b))
            .collect()
    }

    /// What kbpf cannot mirror of this profile: layouts its run-time objects fix. Empty when
    /// kbpf follows the profile completely. Maps place array values and size `memlock` from
    /// the profile; the context structs and hash element headers are kbpf's own `repr(C)`
    /// types, so a kernel that lays those out differently is reported here, not followed.
    pub fn unsupported(&self) -> Vec<String> {
        let ours = Self::builtin();
        let mut v = Vec::new();
        if self.maps.bpf_array_value_off < MIN_ARRAY_VALUE_OFF
            || !self.maps.bpf_array_value_off.is_multiple_of(8)
        {
            v.push(format!(
                "maps.bpf_array_value_off {} (kbpf needs a multiple of 8, at least {MIN_ARRAY_VALUE_OFF})",
                self.maps.bpf_array_value_off
            ));
        }
        for (name, value, own) in [
            (
                "maps.htab_elem_key_off",
                self.maps.htab_elem_key_off,
                ours.maps.htab_elem_key_off,
            ),
            (
                "maps.htab_elem_lru_ref_off",
                self.maps.htab_elem_lru_ref_off,
                ours.maps.htab_elem_lru_ref_off,
            ),
        ] {
            if value != own {
                v.push(format!("{name} {value} (kbpf's hash elements have {own})"));
            }
        }
        let own_ctx = ours.ctx;
        let mut ctx_diff = |name: &str, a: u32, b: u32| {
            if a != b {
                v.push(format!("ctx.{name} {a} (kbpf's run-time context has {b})"));
            }
        };
        let c = &self.ctx;
        ctx_diff("xdp_buff_data", c.xdp_buff_data, own_ctx.xdp_buff_data);
        ctx_diff(
            "xdp_buff_data_end",
            c.xdp_buff_data_end,
            own_ctx.xdp_buff_data_end,
        );
        ctx_diff(
            "xdp_buff_data_meta",
            c.xdp_buff_data_meta,
            own_ctx.xdp_buff_data_meta,
        );
        ctx_diff(
            "xdp_buff_data_hard_start",
            c.xdp_buff_data_hard_start,
            own_ctx.xdp_buff_data_hard_start,
        );
        ctx_diff("xdp_buff_rxq", c.xdp_buff_rxq, own_ctx.xdp_buff_rxq);
        ctx_diff("xdp_buff_txq", c.xdp_buff_txq, own_ctx.xdp_buff_txq);
        ctx_diff(
            "xdp_buff_frame_sz",
            c.xdp_buff_frame_sz,
            own_ctx.xdp_buff_frame_sz,
        );
        ctx_diff(
            "xdp_rxq_info_dev",
            c.xdp_rxq_info_dev,
            own_ctx.xdp_rxq_info_dev,
        );
        ctx_diff(
            "xdp_rxq_info_queue_index",
            c.xdp_rxq_info_queue_index,
            own_ctx.xdp_rxq_info_queue_index,
        );
        ctx_diff(
            "xdp_txq_info_dev",
            c.xdp_txq_info_dev,
            own_ctx.xdp_txq_info_dev,
        );
        ctx_diff(
            "net_device_ifindex",
            c.net_device_ifindex,
            own_ctx.net_device_ifindex,
        );
        ctx_diff("sizeof_sk_buff", c.sizeof_sk_buff, own_ctx.sizeof_sk_buff);
        v
    }

    /// The profile as `kbpf kernel profile` prints it: one field a line, with its origin.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!("profile: {}\n", self.name);
        if let Some(r) = &self.kernel_release {
            let _ = writeln!(s, "kernel_release: {r}");
        }
        let values = self.values();
        let w = values.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let vw = values.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        for (name, value) in values {
            let origin = self
                .origins
                .get(&name)
                .map_or_else(|| "?".to_owned(), |o| o.to_string());
            let _ = writeln!(s, "{name:<w$}  {value:<vw$}  {origin}");
        }
        let unsupported = self.unsupported();
        if !unsupported.is_empty() {
            let _ = writeln!(s, "not mirrored by kbpf:");
            for u in unsupported {
                let _ = writeln!(s, "  {u}");
            }
        }
        s
    }
}

/// The smallest array header kbpf's array maps can have: its own fields (`BpfArray`'s
/// prefix) must fit before the values.
pub const MIN_ARRAY_VALUE_OFF: u32 = 64;

const CTX_FIELDS: [(&str, &str); 12] = [
    ("xdp_buff_data", "offsetof(struct xdp_buff, data)"),
    ("xdp_buff_data_end", "offsetof(struct xdp_buff, data_end)"),
    ("xdp_buff_data_meta", "offsetof(struct xdp_buff, data_meta)"),
    (
        "xdp_buff_data_hard_start",
        "offsetof(struct xdp_buff, data_hard_start)",
    ),
    ("xdp_buff_rxq", "offsetof(struct xdp_buff, rxq)"),
    ("xdp_buff_txq", "offsetof(struct xdp_buff, txq)"),
    ("xdp_buff_frame_sz", "offsetof(struct xdp_buff, frame_sz)"),
    ("xdp_rxq_info_dev", "offsetof(struct xdp_rxq_info, dev)"),
    (
        "xdp_rxq_info_queue_index",
        "offsetof(struct xdp_rxq_info, queue_index)",
    ),
    ("xdp_txq_info_dev", "offsetof(struct xdp_txq_info, dev)"),
    ("net_device_ifindex", "offsetof(struct net_device, ifindex)"),
    ("sizeof_sk_buff", "sizeof(struct sk_buff)"),
];

impl Default for KernelProfile {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_every_field_once_with_an_origin() {
        let p = KernelProfile::builtin();
        let names = KernelProfile::field_names();
        assert_eq!(names.len(), p.values().len());
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate field names");
        for n in &names {
            assert_eq!(p.origins.get(n), Some(&Origin::Builtin), "{n}");
        }
        assert!(p.unsupported().is_empty(), "{:?}", p.unsupported());
    }

    #[test]
    fn json_round_trip_and_diff() {
        let p = KernelProfile::builtin();
        let json = serde_json::to_string(&p).unwrap();
        let q: KernelProfile = serde_json::from_str(&json).unwrap();
        assert_eq!(p, q);
        let mut r = p.clone();
        r.maps.sizeof_bpf_htab = 832;
        r.verifier.inner_map_lookup = InnerMapLookup::MapPtr;
        let d = p.diff(&r);
        assert_eq!(
            d,
            vec![
                ("maps.sizeof_bpf_htab".into(), "896".into(), "832".into()),
                (
                    "verifier.inner_map_lookup".into(),
                    "map_value_or_null".into(),
                    "map_ptr_or_null".into()
                ),
            ]
        );
    }

    #[test]
    fn unsupported_layouts_are_reported() {
        let mut p = KernelProfile::builtin();
        p.maps.bpf_array_value_off = 300;
        p.ctx.net_device_ifindex = 256;
        let u = p.unsupported();
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(u[0].starts_with("maps.bpf_array_value_off 300"));
        assert!(u[1].starts_with("ctx.net_device_ifindex 256"));
        assert!(p.render().contains("not mirrored by kbpf:"));
    }
}

#[cfg(test)]
mod host_btf_tests {
    use super::*;

    /// The running kernel's BTF parses into a profile whose every layout field is BTF's.
    /// Values are not asserted (they differ between builds); origins and sanity are.
    #[test]
    fn host_vmlinux_btf_gives_every_layout_field() {
        let path = "/sys/kernel/btf/vmlinux";
        if !std::path::Path::new(path).exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{path} missing under CI=true");
            }
            eprintln!("SKIP: {path} not present (kernel without CONFIG_DEBUG_INFO_BTF)");
            return;
        }
        let p = KernelProfile::from_btf_file(path).expect("vmlinux BTF profile");
        for (name, origin) in &p.origins {
            let from_btf = name.starts_with("maps.")
                || name.starts_with("ctx.")
                || name == "prog_type_count"
                || name == "verifier.helper_count";
            assert_eq!(
                matches!(origin, Origin::Btf { .. }),
                from_btf,
                "{name}: {origin}"
            );
        }
        // Invariants every kernel has: the value area is 8-aligned after struct bpf_map, a
        // hash element's key is 8-aligned after the LRU node.
        assert!(p.maps.bpf_array_value_off.is_multiple_of(8) && p.maps.bpf_array_value_off > 64);
        assert!(p.maps.htab_elem_key_off.is_multiple_of(8));
        assert!(p.maps.htab_elem_lru_ref_off < p.maps.htab_elem_key_off);
        assert!(p.maps.sizeof_bpf_htab > p.maps.bpf_array_value_off / 2);
        assert!(p.maps.map_type_count >= 30 && p.verifier.helper_count >= 200);
    }
}
