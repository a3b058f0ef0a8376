//! The values of `__kconfig` externs (libbpf's `bpf_object__resolve_externs` for the `.kconfig`
//! map): `LINUX_KERNEL_VERSION` from `uname -r`; `CONFIG_*` from the host's kernel config,
//! `/boot/config-$(uname -r)`, else `/proc/config.gz` (gzip, as libbpf's `gzopen`), line by
//! line as `bpf_object__process_kconfig_line` reads it (`y`/`n`/`m`, quoted strings,
//! integers in C's bases), with its type and range checks; a `__weak` extern the config lacks
//! stays 0, a strong one fails the load. The layout comes from [`kbpf_object::kconfig`].

use std::io::Read;

use kbpf_object::kconfig::{KcfgType, KconfigExtern};

use crate::error::LoadError;

fn fail(reason: String) -> LoadError {
    LoadError::Kconfig { reason }
}

/// `KERNEL_VERSION(a, b, c)` of a release string like `6.18.44-fc-v1300` (libbpf's
/// `get_kernel_version`: the patch level saturates at 255).
pub fn kernel_version(release: &str) -> Option<u32> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let mut num = || parts.next().and_then(|p| p.parse::<u32>().ok());
    let (a, b, c) = (num()?, num()?, num()?);
    Some((a << 16) + (b << 8) + c.min(255))
}

/// The running kernel's release (`uname -r`).
fn release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string())
}

/// The host's kernel config text, as libbpf looks for it.
fn host_config(release: &str) -> Result<String, LoadError> {
    if let Ok(text) = std::fs::read(format!("/boot/config-{release}")) {
        return Ok(gunzip_or_plain(text));
    }
    std::fs::read("/proc/config.gz")
        .map(gunzip_or_plain)
        .map_err(|_| fail("failed to open system Kconfig".into()))
}

/// The file's text, decompressed when it is gzip (`gzopen` reads both).
fn gunzip_or_plain(data: Vec<u8>) -> String {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        if flate2::read::GzDecoder::new(&data[..])
            .read_to_string(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

/// Whether `v` fits the extern's integer (`is_kcfg_value_in_range`).
fn in_range(e: &KconfigExtern, v: u64) -> bool {
    let bits = e.size * 8;
    if bits >= 64 {
        return true;
    }
    match e.ty {
        KcfgType::Int { signed: true } => v.wrapping_add(1 << (bits - 1)) < (1 << bits),
        _ => v >> bits == 0,
    }
}

/// `set_kcfg_value_num`.
fn set_num(e: &KconfigExtern, slot: &mut [u8], v: u64) -> Result<(), LoadError> {
    let name = &e.name;
    if !matches!(e.ty, KcfgType::Int { .. } | KcfgType::Char | KcfgType::Bool) {
        return Err(fail(format!(
            "extern (kcfg) '{name}': value '{v}' implies integer, char, or boolean type"
        )));
    }
    if e.ty == KcfgType::Bool && v > 1 {
        return Err(fail(format!(
            "extern (kcfg) '{name}': value '{v}' isn't boolean compatible"
        )));
    }
    if !in_range(e, v) {
        return Err(fail(format!(
            "extern (kcfg) '{name}': value '{v}' doesn't fit in {} bytes",
            e.size
        )));
    }
    slot.copy_from_slice(&v.to_ne_bytes()[..e.size as usize]);
    Ok(())
}

/// C's `strtoull(s, &end, 0)` consuming all of `s`.
fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if let Some(neg) = digits.strip_prefix('-') {
        // strtoull negates in unsigned arithmetic.
        return u64::from_str_radix(neg, radix).ok().map(u64::wrapping_neg);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `bpf_object__process_kconfig_line` for the externs not set yet.
fn process_line(
    line: &str,
    externs: &[KconfigExtern],
    set: &mut [bool],
    data: &mut [u8],
) -> Result<(), LoadError> {
    if !line.starts_with("CONFIG_") {
        return Ok(());
    }
    let Some((name, value)) = line.split_once('=') else {
        return Err(fail(format!("failed to parse '{line}': no separator")));
    };
    if value.is_empty() {
        return Err(fail(format!("failed to parse '{line}': no value")));
    }
    let Some(i) = externs.iter().position(|e| e.name == name) else {
        return Ok(());
    };
    if set[i] {
        return Ok(());
    }
    let e = &externs[i];
    let slot = &mut data[e.offset as usize..(e.offset + e.size) as usize];
    match value.as_bytes()[0] {
        c @ (b'y' | b'n' | b'm') => match e.ty {
            KcfgType::Bool if c == b'm' => {
                return Err(fail(format!(
                    "extern (kcfg) '{name}': value '{}' implies tristate or char type",
                    c as char
                )));
            }
            KcfgType::Bool => slot[0] = u8::from(c == b'y'),
            // enum libbpf_tristate: TRI_NO 0, TRI_YES 1, TRI_MODULE 2.
            KcfgType::Tristate => {
                let v: u32 = match c {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                };
                slot.copy_from_slice(&v.to_ne_bytes());
            }
            KcfgType::Char => slot[0] = c,
            _ => {
                return Err(fail(format!(
                    "extern (kcfg) '{name}': value '{}' implies bool, tristate, or char type",
                    c as char
                )));
            }
        },
        b'"' => {
            if e.ty != KcfgType::CharArr {
                return Err(fail(format!(
                    "extern (kcfg) '{name}': value '{value}' implies char array type"
                )));
            }
            if value.len() < 2 || !value.ends_with('"') {
                return Err(fail(format!(
                    "extern (kcfg) '{name}': invalid string config '{value}'"
                )));
            }
            let s = &value.as_bytes()[1..value.len() - 1];
            let n = s.len().min(e.size as usize - 1);
            slot[..n].copy_from_slice(&s[..n]);
            slot[n] = 0;
        }
        _ => {
            let Some(v) = parse_u64(value) else {
                return Err(fail(format!(
                    "extern (kcfg) '{name}': value '{value}' isn't a valid integer"
                )));
            };
            if !matches!(e.ty, KcfgType::Int { .. } | KcfgType::Char) {
                return Err(fail(format!(
                    "extern (kcfg) '{name}': value '{value}' implies integer type"
                )));
            }
            set_num(e, slot, v)?;
        }
    }
    set[i] = true;
    Ok(())
}

/// The `.kconfig` map's value for `externs` (`size` bytes), from `config` (the kernel config
/// text, read from the host when `None`) and the kernel `release`.
pub fn resolve(
    externs: &[KconfigExtern],
    size: u32,
    config: Option<&str>,
    release: &str,
) -> Result<Vec<u8>, LoadError> {
    let mut data = vec![0u8; size as usize];
    let mut set = vec![false; externs.len()];
    let mut need_config = false;
    for (i, e) in externs.iter().enumerate() {
        if e.name.starts_with("CONFIG_") {
            need_config = true;
            continue;
        }
        let v = if e.name == "LINUX_KERNEL_VERSION" {
            kernel_version(release).ok_or_else(|| {
                fail(format!(
                    "extern (kcfg) '{}': failed to get kernel version",
                    e.name
                ))
            })?
        } else if e.name.starts_with("LINUX_") && e.weak {
            // An unknown `LINUX_*` extern marked __weak defaults to 0.
            0
        } else {
            return Err(fail(format!(
                "extern (kcfg) '{}': unrecognized virtual extern",
                e.name
            )));
        };
        let slot = &mut data[e.offset as usize..(e.offset + e.size) as usize];
        set_num(e, slot, u64::from(v))?;
        set[i] = true;
    }
    if need_config {
        let text = match config {
            Some(c) => c.to_string(),
            None => host_config(release)?,
        };
        for line in text.lines() {
            process_line(line, externs, &mut set, &mut data)?;
        }
    }
    if let Some((e, _)) = externs.iter().zip(&set).find(|(e, s)| !**s && !e.weak) {
        return Err(fail(format!("extern '{}' (strong): not resolved", e.name)));
    }
    Ok(data)
}

/// [`resolve`] against the running kernel's release and config.
pub fn resolve_host(externs: &[KconfigExtern], size: u32) -> Result<Vec<u8>, LoadError> {
    let rel = release().unwrap_or_default();
    resolve(externs, size, None, &rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, ty: KcfgType, size: u32, offset: u32, weak: bool) -> KconfigExtern {
        KconfigExtern {
            name: name.into(),
            ty,
            size,
            offset,
            weak,
        }
    }

    #[test]
    fn versions_as_libbpf() {
        assert_eq!(kernel_version("6.18.44-fc-v1300"), Some(0x0006_122c));
        assert_eq!(kernel_version("5.4.300"), Some((5 << 16) + (4 << 8) + 255));
        assert_eq!(kernel_version("6.1"), None);
    }

    #[test]
    fn config_lines_fill_the_value() {
        let externs = [
            ext(
                "LINUX_KERNEL_VERSION",
                KcfgType::Int { signed: false },
                4,
                0,
                false,
            ),
            ext("CONFIG_HZ", KcfgType::Int { signed: true }, 4, 4, false),
            ext("CONFIG_MOD", KcfgType::Tristate, 4, 8, false),
            ext("CONFIG_BPF", KcfgType::Bool, 1, 12, false),
            ext("CONFIG_NAME", KcfgType::CharArr, 4, 13, false),
            ext("CONFIG_MISSING", KcfgType::Bool, 1, 17, true),
        ];
        let cfg =
            "# comment\nCONFIG_HZ=0x3e8\nCONFIG_MOD=m\nCONFIG_BPF=y\nCONFIG_NAME=\"abcdef\"\n";
        let v = resolve(&externs, 18, Some(cfg), "6.18.44").unwrap();
        assert_eq!(u32::from_ne_bytes(v[0..4].try_into().unwrap()), 0x0006_122c);
        assert_eq!(i32::from_ne_bytes(v[4..8].try_into().unwrap()), 1000);
        assert_eq!(u32::from_ne_bytes(v[8..12].try_into().unwrap()), 2);
        assert_eq!(v[12], 1);
        // Truncated to 3 characters and a NUL.
        assert_eq!(&v[13..17], b"abc\0");
        assert_eq!(v[17], 0, "weak and missing: 0");
    }

    #[test]
    fn libbpf_refusals() {
        let strong = [ext("CONFIG_GONE", KcfgType::Bool, 1, 0, false)];
        let e = resolve(&strong, 1, Some("CONFIG_OTHER=y\n"), "6.1.0").unwrap_err();
        assert_eq!(e.to_string(), "extern 'CONFIG_GONE' (strong): not resolved");
        let b = [ext("CONFIG_B", KcfgType::Bool, 1, 0, false)];
        assert!(resolve(&b, 1, Some("CONFIG_B=m\n"), "6.1.0").is_err());
        let small = [ext(
            "CONFIG_S",
            KcfgType::Int { signed: false },
            2,
            0,
            false,
        )];
        let e = resolve(&small, 2, Some("CONFIG_S=70000\n"), "6.1.0").unwrap_err();
        assert!(e.to_string().contains("doesn't fit in 2 bytes"), "{e}");
        let virt = [ext(
            "LINUX_NOPE",
            KcfgType::Int { signed: false },
            4,
            0,
            false,
        )];
        assert!(resolve(&virt, 4, None, "6.1.0").is_err());
        let weak_virt = [ext(
            "LINUX_NOPE",
            KcfgType::Int { signed: false },
            4,
            0,
            true,
        )];
        assert_eq!(resolve(&weak_virt, 4, None, "6.1.0").unwrap(), vec![0; 4]);
    }
}
