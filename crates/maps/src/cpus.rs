//! The machine's CPU count as the kernel sees it (`num_possible_cpus()`), which sizes per-CPU
//! storage and the memlock figures.

use std::sync::OnceLock;

/// The kernel's `num_possible_cpus()` for this machine: parsed from
/// `/sys/devices/system/cpu/possible` (so memlock figures match the kernel's), falling back to
/// the available parallelism. Per-CPU maps use this unless [`crate::MapAttr::nr_cpus`] says otherwise.
pub fn possible_cpus() -> u32 {
    static CPUS: OnceLock<u32> = OnceLock::new();
    *CPUS.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| parse_cpu_list(s.trim()))
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u32)
            })
            .unwrap_or(1)
            .max(1)
    })
}

/// Counts the CPUs in a kernel cpu list such as `0-3,8-9`.
fn parse_cpu_list(s: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                n = n.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
            }
            None => {
                part.parse::<u32>().ok()?;
                n = n.checked_add(1)?;
            }
        }
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_parsing() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,8-9,12"), Some(7));
        assert_eq!(parse_cpu_list("x"), None);
        assert!(possible_cpus() >= 1);
    }
}
