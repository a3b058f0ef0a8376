//! The FIB walk on hand-made routing state (the live kernel comparison is kbpf-run's
//! `tests/fib_kernel.rs`).

use super::rtnl::NextHop;
use super::*;

fn route(table: u32, dst: [u8; 4], len: u8, kind: u8, ifindex: u32) -> Route {
    Route {
        table,
        dst: v4(u32::from_be_bytes(dst)),
        dst_len: len,
        kind,
        nexthops: vec![NextHop {
            ifindex,
            ..NextHop::default()
        }],
        ..Route::default()
    }
}

fn flow(dst: [u8; 4]) -> Flow {
    Flow {
        dst: v4(u32::from_be_bytes(dst)),
        ..Flow::default()
    }
}

#[test]
fn prefixes() {
    assert!(in_prefix(v4(0x0a00_0001), v4(0x0a00_0000), 8));
    assert!(!in_prefix(v4(0x0b00_0001), v4(0x0a00_0000), 8));
    assert!(in_prefix(v4(0xdead_beef), 0, 0));
    assert!(in_prefix(5, 5, 128));
    assert!(!in_prefix(5, 4, 128));
    assert!(ipv6_need_strict(0xfe80 << 112));
    assert!(ipv6_need_strict(0xff02 << 112 | 1));
    assert!(ipv6_need_strict(1));
    assert!(!ipv6_need_strict(0x2001_0db8 << 96));
}

/// Longest prefix first; a DSCP alias only for its DSCP; a reject type is the lookup's
/// error; a dead nexthop or one off `oif` is skipped for a shorter prefix; nothing is
/// `-EAGAIN`.
#[test]
fn table_lookup() {
    let main = u32::from(libc::RT_TABLE_MAIN);
    let mut tos = route(main, [10, 1, 0, 0], 16, libc::RTN_UNICAST, 3);
    tos.tos = 0x10;
    let mut dead = route(main, [10, 2, 0, 0], 16, libc::RTN_UNICAST, 4);
    dead.nexthops[0].flags = RTNH_F_DEAD;
    let routes = vec![
        route(main, [10, 0, 0, 0], 8, libc::RTN_UNICAST, 2),
        tos,
        dead,
        route(main, [10, 3, 0, 0], 16, libc::RTN_BLACKHOLE, 1),
        route(main, [10, 4, 0, 0], 16, libc::RTN_THROW, 1),
        route(7, [10, 5, 0, 0], 16, libc::RTN_UNICAST, 9),
    ];
    let ifindex =
        |f: &Flow| fib4_table_lookup(&routes, main, f, &[]).map(|r| r.route.nexthops[r.nh].ifindex);
    assert_eq!(ifindex(&flow([10, 9, 9, 9])), Ok(2));
    assert_eq!(ifindex(&flow([10, 1, 0, 1])), Ok(2));
    assert_eq!(
        ifindex(&Flow {
            dscp: 0x10,
            ..flow([10, 1, 0, 1])
        }),
        Ok(3)
    );
    assert_eq!(ifindex(&flow([10, 2, 0, 1])), Ok(2));
    assert_eq!(ifindex(&flow([10, 3, 0, 1])), Err(-libc::EINVAL));
    assert_eq!(ifindex(&flow([10, 4, 0, 1])), Err(-libc::EAGAIN));
    assert_eq!(ifindex(&flow([10, 5, 0, 1])), Ok(2));
    assert_eq!(ifindex(&flow([11, 0, 0, 1])), Err(-libc::EAGAIN));
    assert_eq!(
        ifindex(&Flow {
            oif: 5,
            ..flow([10, 9, 9, 9])
        }),
        Err(-libc::EAGAIN)
    );
}

/// Rules in order: a non-matching mark is passed over, `goto` skips forward, a throw goes
/// on to the next rule, `suppress_prefixlen` refuses short prefixes, the reject actions
/// end with their errors, running out of rules is `-ESRCH`.
#[test]
fn rules() {
    let main = u32::from(libc::RT_TABLE_MAIN);
    let routes = vec![
        route(main, [0, 0, 0, 0], 0, libc::RTN_UNICAST, 2),
        route(100, [10, 0, 0, 0], 8, libc::RTN_UNICAST, 3),
        route(100, [10, 4, 0, 0], 16, libc::RTN_THROW, 1),
    ];
    let rule = |priority, action, table| Rule {
        priority,
        action,
        table,
        uid: (0, u32::MAX),
        suppress_prefixlen: -1,
        ..Rule::default()
    };
    let mut marked = rule(10, FR_ACT_TO_TBL, 100);
    (marked.mark, marked.mark_mask) = (7, u32::MAX);
    let mut jump = rule(20, FR_ACT_GOTO, 0);
    jump.goto = Some(40);
    let mut prohibit = rule(50, FR_ACT_PROHIBIT, 0);
    prohibit.dst = v4(0x0b00_0000);
    prohibit.dst_len = 8;
    let mut suppress = rule(5, FR_ACT_TO_TBL, main);
    suppress.suppress_prefixlen = 0;
    let rules = vec![
        suppress,
        marked,
        jump,
        rule(30, FR_ACT_BLACKHOLE, 0),
        rule(40, FR_ACT_TO_TBL, 100),
        prohibit,
        rule(60, FR_ACT_TO_TBL, main),
    ];
    let lookup = |f: &Flow| {
        rules_lookup(&rules, f, &[], false, |t| {
            fib4_table_lookup(&routes, t, f, &[])
        })
        .map(|r| r.route.nexthops[r.nh].ifindex)
    };
    assert_eq!(lookup(&flow([10, 1, 1, 1])), Ok(3));
    assert_eq!(
        lookup(&Flow {
            mark: 7,
            ..flow([10, 1, 1, 1])
        }),
        Ok(3)
    );
    // Throw in table 100, past the prohibit rule (not 11/8), to main's default route.
    assert_eq!(lookup(&flow([10, 4, 0, 1])), Ok(2));
    assert_eq!(lookup(&flow([11, 0, 0, 1])), Err(-libc::EACCES));
    let mut inverted = rules.clone();
    inverted[2].invert = true; // the goto no longer matches: the blackhole rule does
    let r = rules_lookup(&inverted, &flow([10, 1, 1, 1]), &[], false, |t| {
        fib4_table_lookup(&routes, t, &flow([10, 1, 1, 1]), &[])
    });
    assert_eq!(r.err(), Some(-libc::EINVAL));
    assert_eq!(
        rules_lookup(&rules[..1], &flow([10, 1, 1, 1]), &[], false, |t| {
            fib4_table_lookup(&routes, t, &flow([10, 1, 1, 1]), &[])
        })
        .err(),
        Some(-libc::ESRCH)
    );
}
