//! The running kernel's profile ([`host_profile`]): layouts from `/sys/kernel/btf/vmlinux`,
//! and the behaviours BTF cannot show from a few small `bpf()` probes.
//!
//! Each probe loads one tiny program and reads back what only that kernel build can say:
//! - the verifier's type for an outer map-in-map lookup (its message for dereferencing the
//!   unchecked result names `map_value_or_null` or `map_ptr_or_null`);
//! - the program tag's hash (the tag of a known program against SHA-1 and SHA-256);
//! - whether a 32-bit `cmpxchg` gets an explicit zero-extension (the xlated length).
//!
//! Kernel-differential tests compare kbpf under this profile with the same kernel, so they
//! pass on every build the profile explains and still fail on any difference it does not.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

use kbpf_isa::Insn;
use kbpf_isa::insn::*;
use kbpf_profile::{InnerMapLookup, KernelProfile, TagHash};

use crate::consts::{BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_PROG_TYPE_XDP};
use crate::{KernelMap, KernelProg, MapCreateAttr, ProgLoadError};

/// Where the running kernel's BTF is.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The running kernel's profile (computed once per process): [`KernelProfile::from_btf_file`]
/// on [`VMLINUX_BTF`], then the probes. `Err` says why it cannot be had (no BTF, no `bpf()`,
/// a probe that saw something it does not know).
pub fn host_profile() -> Result<KernelProfile, String> {
    static HOST: OnceLock<Result<KernelProfile, String>> = OnceLock::new();
    HOST.get_or_init(compute_host_profile).clone()
}

fn compute_host_profile() -> Result<KernelProfile, String> {
    crate::bpf_available()?;
    let mut p = KernelProfile::from_btf_file(VMLINUX_BTF).map_err(|e| e.to_string())?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .ok();
    p.name = format!("host {}", release.as_deref().unwrap_or("(unknown release)"));
    p.kernel_release = release;
    let (lookup, seen) = probe_inner_map_lookup()?;
    p.verifier.inner_map_lookup = lookup;
    p.set_probed("verifier.inner_map_lookup", seen);
    let (hash, seen) = probe_tag_hash()?;
    p.rewrite.tag_hash = hash;
    p.set_probed("rewrite.tag_hash", seen);
    let (zext, seen) = probe_zext_cmpxchg32()?;
    p.rewrite.zext_cmpxchg32 = zext;
    p.set_probed("rewrite.zext_cmpxchg32", seen);
    Ok(p)
}

fn mov64_imm(dst: u8, imm: i32) -> Insn {
    Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

fn exit() -> Insn {
    Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// Loads the unchecked result of an outer lookup: the kernel refuses with
/// `R0 invalid mem access '<type>_or_null'`.
fn probe_inner_map_lookup() -> Result<(InnerMapLookup, String), String> {
    let inner = KernelMap::create(&MapCreateAttr::new(BPF_MAP_TYPE_ARRAY, 4, 4, 1))
        .map_err(|e| format!("probe inner map: {e}"))?;
    let outer = KernelMap::create(
        &MapCreateAttr::new(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1).inner(inner.as_fd()),
    )
    .map_err(|e| format!("probe outer map: {e}"))?;
    let fd = outer.as_fd().as_raw_fd();
    let insns = [
        mov64_imm(1, 0),
        Insn::new(BPF_STX | BPF_MEM | BPF_W, 10, 1, -4, 0),
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
        Insn::new(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
        Insn::new(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, fd),
        Insn::new(0, 0, 0, 0, 0),
        Insn::new(BPF_JMP | BPF_CALL, 0, 0, 0, 1),
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, 0, 0, 0, 0),
        mov64_imm(0, 0),
        exit(),
    ];
    let log = match KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 1) {
        Ok(_) => return Err("probe: the kernel accepted an unchecked inner-map load".into()),
        Err(ProgLoadError::Rejected { log, .. }) => log,
        Err(e) => return Err(format!("probe inner-map lookup: {e}")),
    };
    for kind in [InnerMapLookup::MapValue, InnerMapLookup::MapPtr] {
        let want = format!("R0 invalid mem access '{}_or_null'", kind.type_name());
        if log.lines().any(|l| l.contains(&want)) {
            return Ok((kind, format!("verifier says \"{want}\"")));
        }
    }
    Err(format!(
        "probe inner-map lookup: unknown verifier message:\n{log}"
    ))
}

/// The tag of `r0 = 0; exit` against both hashes.
fn probe_tag_hash() -> Result<(TagHash, String), String> {
    let insns = [mov64_imm(0, 0), exit()];
    let (prog, _) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0)
        .map_err(|e| format!("probe tag: {e}"))?;
    let info = prog.info().map_err(|e| format!("probe tag: {e}"))?;
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    for hash in [TagHash::Sha256, TagHash::Sha1] {
        if hash.tag_of(&bytes) == info.tag {
            return Ok((hash, format!("tag {} of `r0 = 0; exit`", info.tag_hex())));
        }
    }
    Err(format!(
        "probe tag: {} is neither SHA-1 nor SHA-256 of the program",
        info.tag_hex()
    ))
}

/// A 32-bit `cmpxchg` on the stack: 5 instructions, 6 translated when the verifier adds
/// `w0 = w0`.
fn probe_zext_cmpxchg32() -> Result<(bool, String), String> {
    let insns = [
        mov64_imm(0, 0),
        Insn::new(BPF_STX | BPF_MEM | BPF_W, 10, 0, -4, 0),
        mov64_imm(1, 1),
        Insn::new(BPF_STX | BPF_ATOMIC | BPF_W, 10, 1, -4, BPF_CMPXCHG),
        exit(),
    ];
    let (prog, _) = KernelProg::load(BPF_PROG_TYPE_XDP, &insns, "GPL", 0)
        .map_err(|e| format!("probe cmpxchg zext: {e}"))?;
    let xlated = prog
        .xlated()
        .map_err(|e| format!("probe cmpxchg zext: {e}"))?;
    match xlated.len() {
        5 => Ok((false, "5 xlated insns for 5".into())),
        6 => Ok((true, "6 xlated insns for 5 (w0 = w0 added)".into())),
        n => Err(format!("probe cmpxchg zext: {n} xlated insns for 5")),
    }
}

/// For kernel-differential tests: the host profile, or `None` after printing
/// `SKIP: …` (a failure under `CI=true`, where everything must be there).
pub fn host_profile_or_skip(test: &str) -> Option<KernelProfile> {
    match host_profile() {
        Ok(p) => Some(p),
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: no host kernel profile under CI=true: {why}");
            }
            println!("SKIP: no host kernel profile: {why} ({test})");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbpf_profile::Origin;

    /// Every behaviour is probed (none left at the built-in value unobserved), every layout
    /// read from the BTF, and `bpf()` programs agree with what was probed.
    #[test]
    fn host_profile_is_probed_and_read_from_btf() {
        let Some(p) = host_profile_or_skip("host_profile") else {
            return;
        };
        for (field, origin) in &p.origins {
            let probed = matches!(
                field.as_str(),
                "verifier.inner_map_lookup" | "rewrite.tag_hash" | "rewrite.zext_cmpxchg32"
            );
            match origin {
                Origin::Probe { .. } => assert!(probed, "{field} probed"),
                Origin::Btf { file, .. } => {
                    assert!(!probed, "{field} from BTF");
                    assert_eq!(file, VMLINUX_BTF);
                }
                Origin::Builtin => panic!("{field} left built-in in the host profile"),
            }
        }
        assert!(p.name.starts_with("host "));
        assert!(p.render().contains("verifier.inner_map_lookup"));
    }
}
