use crate::tests::blob;
use crate::{Btf, kind};

fn info(k: u32, vlen: u32, kf: bool) -> u32 {
    (k << 24) | vlen | if kf { 1 << 31 } else { 0 }
}

#[test]
fn pointer_cycle_gets_a_forward_declaration() {
    // struct a { struct b *b; }; struct b { struct a a; int (*f)(int, ...); };
    let strings = b"\0int\0a\0b\0f\0";
    // int 1, a 5, b 7, f 9
    let types = [
        1,
        info(kind::INT, 0, false),
        4,
        (1 << 24) | 32, // [1] int
        5,
        info(kind::STRUCT, 1, false),
        8,
        7,
        3,
        0, // [2] struct a { struct b *b; }
        0,
        info(kind::PTR, 0, false),
        4, // [3] struct b *
        7,
        info(kind::STRUCT, 2, false),
        16,
        5,
        2,
        0,
        9,
        6,
        64, // [4] struct b
        0,
        info(kind::FUNC_PROTO, 2, false),
        1,
        0,
        1,
        0,
        0, // [5] int (int, ...)
        0,
        info(kind::PTR, 0, false),
        5, // [6] ptr to proto
    ];
    let btf = Btf::parse(&blob(&types, strings)).unwrap();
    assert_eq!(
        btf.dump_c(&[]).unwrap(),
        "struct b;\n\n\
         struct a {\n\tstruct b *b;\n};\n\n\
         struct b {\n\tstruct a a;\n\tint (*f)(int, ...);\n};\n\n"
    );
}

#[test]
fn anonymous_enum_and_padding() {
    // enum { X = 1 }; struct s { char c; long l; } with l at 64 bits: natural, no padding;
    // struct t { char c; int: 24; char d; } (d at 32 bits, needs explicit padding? no:
    // char d aligns to 8, so `int: 24` style padding is emitted as bytes).
    let strings = b"\0X\0s\0c\0l\0char\0long\0";
    // X 1, s 3, c 5, l 7, char 9, long 14
    let types = [
        0,
        info(kind::ENUM, 1, false),
        4,
        1,
        1, // [1] enum { X = 1 }
        9,
        info(kind::INT, 0, false),
        1,
        (1 << 24) | 8, // [2] char
        14,
        info(kind::INT, 0, false),
        8,
        (1 << 24) | 64, // [3] long
        3,
        info(kind::STRUCT, 2, false),
        16,
        5,
        2,
        0,
        7,
        3,
        64, // [4] struct s
    ];
    let btf = Btf::parse(&blob(&types, strings)).unwrap();
    assert_eq!(
        btf.dump_c(&[]).unwrap(),
        "enum {\n\tX = 1,\n};\n\n\
         struct s {\n\tchar c;\n\tlong l;\n};\n\n"
    );
}

#[test]
fn hostile_cycles_do_not_overflow() {
    // [1] ptr -> [2] ptr -> [1]
    let types = [
        0,
        info(kind::PTR, 0, false),
        2,
        0,
        info(kind::PTR, 0, false),
        1,
    ];
    let btf = Btf::parse(&blob(&types, b"\0")).unwrap();
    assert!(btf.dump_c(&[]).is_err());
}
