//! Split BTF (`btf dump file FILE` with `-B BASE`, as bpftool; kbpf's `base BASE` word) against
//! bpftool 7.1: a split blob is built here on top of a base — a corpus object's `.BTF` and the
//! running kernel's vmlinux — with its ids continuing the base's, its strings past the base's
//! string section, and references to base types and a base string; then the raw dump (text
//! and `-j`) and the C dump must be bpftool's byte for byte, and a base that cannot be read
//! must fail as bpftool's. Needs bpftool only (no bpf()); skips with a `SKIP:` line without it
//! (a failure under CI=true).

use std::path::{Path, PathBuf};
use std::process::Command;

use kbpf_object::btf::{Btf, kind};

fn out(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn skip() -> bool {
    match Command::new("bpftool").arg("version").output() {
        Ok(o) if o.status.success() => false,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("btf_split: bpftool unavailable under CI=true")
        }
        _ => {
            println!("SKIP: btf_split: bpftool unavailable");
            true
        }
    }
}

/// The raw `.BTF` of an ELF object, or the file itself.
fn raw_btf(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    if !data.starts_with(b"\x7fELF") {
        return data;
    }
    use object::{Object, ObjectSection};
    let f = object::File::parse(&*data).unwrap();
    f.section_by_name(".BTF").unwrap().data().unwrap().to_vec()
}

/// A split BTF blob on top of `base`: a struct of base ints (one member named by a base
/// string), a pointer, a typedef, a function and its prototype, an array and an enum.
fn split_blob(base: &[u8]) -> Vec<u8> {
    let b = Btf::parse(base).unwrap();
    let n = b.len() as u32;
    let base_str_len = u32::from_le_bytes(base[20..24].try_into().unwrap());
    let int = b.find_by_name_kind("int", kind::INT).expect("base int");
    let base_name = (1..n)
        .find(|&id| {
            matches!(
                b.type_by_id(id).unwrap().kind,
                kbpf_object::btf::BtfKind::Struct { .. }
            ) && !b.type_by_id(id).unwrap().name.is_empty()
        })
        .map(|id| b.name_off(id))
        .expect("a named base struct");
    let mut strings = vec![0u8];
    let mut s = |name: &str| {
        let off = base_str_len + strings.len() as u32;
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        off
    };
    let info = |k: u32, vlen: u32| (k << 24) | vlen;
    let (pair, a, bb, arr) = (s("kbpf_split_pair"), s("a"), s("b"), s("arr"));
    let (t, f, x) = (s("kbpf_split_t"), s("kbpf_split_fn"), s("x"));
    let (e, one, two) = (s("kbpf_split_e"), s("KBPF_ONE"), s("KBPF_TWO"));
    #[rustfmt::skip]
    let types: Vec<u32> = vec![
        // [n] struct kbpf_split_pair { int a; int b; int <base name>; int arr[3]; }
        pair, info(kind::STRUCT, 4), 24,
        a, int, 0,
        bb, int, 32,
        base_name, int, 64,
        arr, n + 5, 96,
        // [n+1] struct kbpf_split_pair *
        0, info(kind::PTR, 0), n,
        // [n+2] typedef struct kbpf_split_pair *kbpf_split_t
        t, info(kind::TYPEDEF, 0), n + 1,
        // [n+3] int (kbpf_split_t x)
        0, info(kind::FUNC_PROTO, 1), int,
        x, n + 2,
        // [n+4] global function kbpf_split_fn
        f, info(kind::FUNC, 1), n + 3,
        // [n+5] int[3]
        0, info(kind::ARRAY, 0), 0,
        int, int, 3,
        // [n+6] enum kbpf_split_e { KBPF_ONE = 1, KBPF_TWO = 2 }
        e, info(kind::ENUM, 2), 4,
        one, 1,
        two, 2,
    ];
    let tl = (types.len() * 4) as u32;
    let mut v = vec![0x9f, 0xeb, 1, 0];
    for w in [24, 0, tl, tl, strings.len() as u32] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    for w in types {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v.extend_from_slice(&strings);
    v
}

#[test]
fn split_btf_dumps_match_bpftool() {
    if skip() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut bases = vec![root.join("tests/objects/btf_kinds.bpf.o")];
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        bases.push(PathBuf::from("/sys/kernel/btf/vmlinux"));
    }
    let dir = std::env::temp_dir().join(format!("kbpf-btfsplit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kbpf = |args: &[&str]| {
        out(Command::new(env!("CARGO_BIN_EXE_kbpf"))
            .arg("--bpffs")
            .arg(&dir)
            .args(args)
            .env_remove("KBPF_KERNEL"))
    };
    let mut failures = Vec::new();
    let mut compared = 0;
    for (i, base) in bases.iter().enumerate() {
        let split = dir.join(format!("split{i}.btf"));
        std::fs::write(&split, split_blob(&raw_btf(base))).unwrap();
        let (b, s) = (base.to_str().unwrap(), split.to_str().unwrap());
        for fmt in [&[][..], &["format", "raw"], &["format", "c"], &["-j"]] {
            let mut args = vec!["-B", b, "btf", "dump", "file", s];
            args.extend(fmt);
            let want = out(Command::new("bpftool").args(&args));
            assert_eq!(want.0, 0, "bpftool {args:?}: {}", want.2);
            if fmt != ["format", "c"] {
                assert!(want.1.contains("kbpf_split_pair"), "{}", want.1);
            }
            let got = kbpf(&args);
            // kbpf's own spelling: `file FILE base BASE`.
            let mut kw = vec!["btf", "dump", "file", s, "base", b];
            kw.extend(fmt);
            let got_kw = kbpf(&kw);
            for (what, g) in [("-B", &got), ("base", &got_kw)] {
                compared += 1;
                if *g != want {
                    failures.push(format!(
                        "{what} {args:?}: kbpf status {} stderr {:?}, bpftool {} {:?}; first \
                         differing line: {:?} vs {:?}",
                        g.0,
                        g.2,
                        want.0,
                        want.2,
                        g.1.lines().zip(want.1.lines()).find(|(x, y)| x != y),
                        (g.1.lines().count(), want.1.lines().count())
                    ));
                }
            }
        }
    }
    // A base that cannot be read.
    let s = dir.join("split0.btf");
    let args = [
        "-B",
        "/nonexistent.btf",
        "btf",
        "dump",
        "file",
        s.to_str().unwrap(),
    ];
    let want = out(Command::new("bpftool").args(args));
    let got = kbpf(&args);
    assert_eq!(got, want, "missing base");
    let _ = kbpf(&["daemon", "stop"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 8, "{compared}");
}
