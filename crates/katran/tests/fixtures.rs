//! Katran's own fixtures on kbpf's interpreter, kbpf's JIT and the live kernel
//! (`BPF_PROG_TEST_RUN`), provisioned as Katran's tester provisions them. kbpf must equal
//! the kernel wherever the kernel run succeeds; agreement with Katran's expectation is
//! counted and printed per fixture file.

use std::path::PathBuf;
use std::process::Command;

use kbpf_katran::fixture::{Fixture, read_fixture_file};
use kbpf_katran::provision::{self as prov, Lb, Op, apply};
use kbpf_katran::runner::{KbpfBalancer, KernelBalancer, RunOut};
use kbpf_katran::{katran_src, repo_root};
use kbpf_run::Engine;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(why: &str) {
    if ci() {
        panic!("katran fixtures cannot run under CI=true: {why}");
    }
    println!("SKIP: {why}");
}

/// The prefix of a build error that means "cannot build here" (a skip, not a failure).
const MISSING: &str = "katran objects cannot be built here";

/// One build directory per feature set (the script rebuilds only when a source changes).
fn variant_dir(variant: &str, defines: &str) -> String {
    let mut d = variant.to_string();
    for w in defines.split_whitespace() {
        d.push('_');
        d.extend(
            w.trim_start_matches("-D")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    d
}

/// `scripts/katran-build.sh` with Katran's compile-time `defines`, into its own directory
/// per feature set: the directory of the built objects, or why not.
fn build_objects(variant: &str, defines: &str) -> Result<PathBuf, String> {
    let out = repo_root()
        .join("target/katran")
        .join(variant_dir(variant, defines));
    kbpf_katran::build_objects(defines, &out).map_err(|e| match e {
        kbpf_katran::BuildError::Missing(w) => format!("{MISSING} ({w})"),
        e @ kbpf_katran::BuildError::Failed(_) => e.to_string(),
    })
}

fn fixtures_dir() -> PathBuf {
    katran_src().join("katran/lib/testing/fixtures")
}

/// Every fixture header parses, and every packet either builds or names why it cannot.
#[test]
fn every_fixture_file_parses() {
    let dir = fixtures_dir();
    if !dir.is_dir() {
        skip(&format!("{} missing", dir.display()));
        return;
    }
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
        .collect();
    names.sort();
    let mut total = 0;
    let mut unbuilt = 0;
    for path in names {
        let src = std::fs::read_to_string(&path).expect("read fixture file");
        let vectors = read_fixture_file(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (name, fx) in &vectors {
            let built = fx
                .iter()
                .filter(|f| f.input.is_ok() && f.expected_output.is_ok())
                .count();
            println!(
                "{}: {name}: {} fixtures, {built} with both packets built",
                path.file_name().unwrap().to_string_lossy(),
                fx.len()
            );
            for f in fx {
                for (what, r) in [("input", &f.input), ("expected output", &f.expected_output)] {
                    if let Err(e) = r {
                        unbuilt += 1;
                        println!("  #{} {}: {what} not built: {e}", f.index, f.description);
                    }
                }
            }
            total += fx.len();
        }
    }
    assert!(total > 0, "no fixtures found");
    assert_eq!(unbuilt, 0, "every fixture's packets build (reasons above)");
}

#[derive(Default)]
struct Counts {
    total: usize,
    not_built: usize,
    kbpf_cannot: usize,
    kernel_ran: usize,
    interp_eq_kernel: usize,
    jit_eq_kernel: usize,
    kernel_eq_katran: usize,
    interp_eq_katran: usize,
    jit_eq_katran: usize,
}

fn code(r: u32) -> &'static str {
    match r {
        0 => "XDP_ABORTED",
        1 => "XDP_DROP",
        2 => "XDP_PASS",
        3 => "XDP_TX",
        4 => "XDP_REDIRECT",
        _ => "UNKNOWN",
    }
}

/// BpfTester's check: return code by name, output bytes equal.
fn matches_katran(out: &RunOut, f: &Fixture) -> bool {
    code(out.retval) == f.expected_return
        && f.expected_output.as_ref().is_ok_and(|e| *e == out.data)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

type Prepare = fn(&mut Lb) -> Result<(), String>;

/// One `tester.resetTestFixtures(…); tester.testFromFixture()` step of `katran_tester`,
/// after its provisioning.
struct Phase {
    file: &'static str,
    vector: &'static str,
    prepare: &'static [Prepare],
}

/// One `katran_tester` invocation: a balancer built with `defines`, its phases in order over
/// the same maps (the LRU and the control plane carry over, as in Katran's tester).
struct Suite {
    name: &'static str,
    defines: &'static str,
    gue: bool,
    phases: Vec<Phase>,
}

fn base_phase() -> Phase {
    Phase {
        file: "KatranBaseTestFixtures.h",
        vector: "testFixtures",
        prepare: &[
            prov::prepare_lb_data,
            prov::prepare_vip_uninitialized_lb_data,
        ],
    }
}

/// GUE builds: the fixtures expect Katran's GUE port 9886 (`GUE_DPORT`).
const GUE: &str = "-DGUE_ENCAP -DGUE_DPORT=9886";

/// `--gue`: the GUE flavour of the base fixtures (`testParam.testData`).
fn gue_phase() -> Phase {
    Phase {
        file: "KatranGueTestFixtures.h",
        vector: "gueTestFixtures",
        prepare: &[
            prov::prepare_lb_data,
            prov::prepare_vip_uninitialized_lb_data,
        ],
    }
}

struct Datapaths {
    interp: Result<KbpfBalancer, String>,
    jit: Result<KbpfBalancer, String>,
    kernel: Option<Result<KernelBalancer, String>>,
}

impl Datapaths {
    /// Provisions every loaded datapath; a failed write is an error of the suite.
    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        for (what, r) in [("interpreter", &mut self.interp), ("JIT", &mut self.jit)] {
            if let Ok(b) = r {
                apply(b, ops).map_err(|e| format!("kbpf {what}: provisioning failed: {e}"))?;
            }
        }
        if let Some(Ok(k)) = &mut self.kernel {
            apply(k, ops).map_err(|e| format!("kernel provisioning failed: {e}"))?;
        }
        Ok(())
    }
}

fn show(r: &Result<RunOut, String>) -> String {
    match r {
        Ok(o) => format!("{} {}", code(o.retval), hex(&o.data)),
        Err(e) => format!("error: {e}"),
    }
}

/// Per phase, its label and counts; and every kbpf-vs-kernel mismatch.
type SuiteResults = (Vec<(String, Counts)>, Vec<String>);

/// Runs a suite: per phase, its counts; and every kbpf-vs-kernel mismatch.
fn run_suite(suite: &Suite, kernel_ok: bool) -> Result<SuiteResults, String> {
    let dir = build_objects(suite.name, suite.defines)?;
    let object = dir.join("balancer.bpf.o");
    let mut dp = Datapaths {
        interp: KbpfBalancer::load(&object, Engine::Interpreter),
        jit: KbpfBalancer::load(&object, Engine::Jit),
        kernel: kernel_ok.then(|| KernelBalancer::load(&object)),
    };
    let mut lb = Lb::new()?;
    if suite.gue {
        lb.setup_gue_environment()?;
    }
    // KatranLb enables recirculation when the build has inline decap.
    if suite.defines.contains("INLINE_DECAP") {
        lb.enable_recirculation();
    }
    let mut results = Vec::new();
    let mut mismatches = Vec::new();
    for phase in &suite.phases {
        for prepare in phase.prepare {
            prepare(&mut lb)?;
        }
        dp.apply(&lb.take_ops())?;
        let label = format!("[{}] {}:{}", suite.name, phase.file, phase.vector);
        let fixtures = read_vector(phase.file, phase.vector);
        let mut c = Counts::default();
        for f in &fixtures {
            c.total += 1;
            let input = match &f.input {
                Ok(p) => p,
                Err(e) => {
                    c.not_built += 1;
                    println!(
                        "{label} #{} {}: input not built: {e}",
                        f.index, f.description
                    );
                    continue;
                }
            };
            let i = dp
                .interp
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|b| b.run(input));
            let j = dp
                .jit
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|b| b.run(input));
            let k = dp
                .kernel
                .as_ref()
                .map(|k| k.as_ref().map_err(Clone::clone).and_then(|k| k.run(input)));
            let line = format!("{label} #{} {}", f.index, f.description);
            if let (Err(e), _) | (_, Err(e)) = (&dp.interp, &dp.jit) {
                c.kbpf_cannot += 1;
                println!("{line}: kbpf cannot run it: {}", kbpf_reason(e));
            }
            match &k {
                Some(Ok(ko)) => {
                    c.kernel_ran += 1;
                    let ie = i.as_ref().is_ok_and(|o| o == ko);
                    let je = j.as_ref().is_ok_and(|o| o == ko);
                    c.interp_eq_kernel += usize::from(ie);
                    c.jit_eq_kernel += usize::from(je);
                    c.kernel_eq_katran += usize::from(matches_katran(ko, f));
                    if (!ie || !je) && dp.interp.is_ok() && dp.jit.is_ok() {
                        mismatches.push(format!(
                            "{line}\n  kernel: {}\n  interp: {}\n  jit:    {}",
                            show(&Ok(ko.clone())),
                            show(&i),
                            show(&j)
                        ));
                    }
                }
                Some(Err(e)) => println!(
                    "{line}: kernel cannot run it: {}",
                    e.lines().next().unwrap_or("")
                ),
                None => {}
            }
            let ik = i.as_ref().is_ok_and(|o| matches_katran(o, f));
            let jk = j.as_ref().is_ok_and(|o| matches_katran(o, f));
            c.interp_eq_katran += usize::from(ik);
            c.jit_eq_katran += usize::from(jk);
            let kk = matches!(&k, Some(Ok(ko)) if matches_katran(ko, f));
            if i.is_ok() && !ik || matches!(&k, Some(Ok(_))) && !kk {
                print_expectation_miss(&line, f, &i, &k, code);
            }
        }
        report(&label, &c);
        results.push((label, c));
    }
    Ok((results, mismatches))
}

fn report(label: &str, c: &Counts) {
    println!(
        "{label}: {} fixtures ({} not built, {} kbpf cannot run); kernel ran {}; interpreter = kernel {}, \
         JIT = kernel {}; = Katran's expectation: kernel {}, interpreter {}, JIT {}",
        c.total,
        c.not_built,
        c.kbpf_cannot,
        c.kernel_ran,
        c.interp_eq_kernel,
        c.jit_eq_kernel,
        c.kernel_eq_katran,
        c.interp_eq_katran,
        c.jit_eq_katran
    );
}

fn read_vector(file: &str, vector: &str) -> Vec<Fixture> {
    let src = std::fs::read_to_string(fixtures_dir().join(file)).expect("read fixture file");
    read_fixture_file(&src)
        .expect("parse fixture file")
        .into_iter()
        .find(|(n, _)| n == vector)
        .unwrap_or_else(|| panic!("{file}: no vector {vector}"))
        .1
}

/// The suite's prerequisites, or `None` after printing why it is skipped.
fn prerequisites() -> Option<bool> {
    if !fixtures_dir().is_dir() {
        skip(&format!("{} missing", fixtures_dir().display()));
        return None;
    }
    if let Err(e) = kbpf_kernel::bpf_available() {
        skip(&format!("kernel side: bpf() unavailable: {e}"));
        return Some(false);
    }
    // The kernel side loads with `bpftool prog loadall` and pins under /sys/fs/bpf.
    let bpftool = Command::new("bpftool").arg("version").output();
    if !bpftool.as_ref().is_ok_and(|o| o.status.success()) {
        skip("kernel side: bpftool not runnable");
        return Some(false);
    }
    if !std::path::Path::new("/sys/fs/bpf").is_dir() {
        skip("kernel side: bpffs not mounted at /sys/fs/bpf");
        return Some(false);
    }
    Some(true)
}

/// Runs `suite` and asserts: kbpf equals the kernel wherever both run; every built fixture
/// runs on the kernel; kbpf runs every phase unless `kbpf_cannot` (the baseline) says it
/// cannot, with the reason printed.
fn check(suite: Suite, kbpf_cannot_baseline: usize) {
    let Some(kernel_ok) = prerequisites() else {
        return;
    };
    let (results, mismatches) = match run_suite(&suite, kernel_ok) {
        Ok(r) => r,
        Err(e) if e.starts_with(MISSING) => {
            skip(&e);
            return;
        }
        Err(e) => panic!("[{}] {e}", suite.name),
    };
    let cannot: usize = results.iter().map(|(_, c)| c.kbpf_cannot).sum();
    assert!(
        mismatches.is_empty(),
        "[{}] kbpf differs from the kernel on {} fixtures:\n{}",
        suite.name,
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(
        cannot, kbpf_cannot_baseline,
        "[{}] fixtures kbpf cannot run (baseline {kbpf_cannot_baseline}); update the baseline when it improves",
        suite.name
    );
    if kernel_ok {
        for (label, c) in &results {
            assert_eq!(
                c.kernel_ran + c.not_built,
                c.total,
                "{label}: every built fixture runs on the kernel"
            );
        }
    }
}

/// `katran_tester --test_from_fixtures`: `KatranBaseTestFixtures.h` after `prepareLbData`
/// and `prepareVipUninitializedLbData`, on the default build.
#[test]
fn base_fixtures() {
    check(
        Suite {
            name: "default",
            defines: "",
            gue: false,
            phases: vec![base_phase()],
        },
        0,
    );
}

/// `--gue --udp_flow_migration`: GUE base, then the flow-migration fixtures before and after a real
/// goes down.
#[test]
fn udp_flow_migration_fixtures() {
    check(
        Suite {
            name: "udp_flow_migration",
            defines: GUE,
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranUdpFlowMigrationTestFixtures.h",
                    vector: "udpFlowMigrationTestFirstFixtures",
                    prepare: &[prov::prepare_udp_flow_migration_test_data],
                },
                Phase {
                    file: "KatranUdpFlowMigrationTestFixtures.h",
                    vector: "udpFlowMigrationTestSecondFixtures",
                    prepare: &[prov::set_down_host_for_udp_flow_migration],
                },
            ],
        },
        0,
    );
}

/// `--gue`: `KatranGueTestFixtures.h` on a `GUE_ENCAP` build.
#[test]
fn gue_fixtures() {
    check(
        Suite {
            name: "gue",
            defines: GUE,
            gue: true,
            phases: vec![gue_phase()],
        },
        0,
    );
}

/// `--tpr`: `KatranTPRTestFixtures.h` on a `TCP_SERVER_ID_ROUTING` build.
#[test]
fn tpr_fixtures() {
    check(
        Suite {
            name: "tpr",
            defines: "-DTCP_SERVER_ID_ROUTING",
            gue: false,
            phases: vec![Phase {
                file: "KatranTPRTestFixtures.h",
                vector: "tprTestFixtures",
                prepare: &[
                    prov::prepare_lb_data,
                    prov::prepare_vip_uninitialized_lb_data,
                ],
            }],
        },
        0,
    );
}

/// `--gue --stable_rt`: GUE base, then `KatranUdpStableRtTestFixtures.h` on a GUE,
/// `UDP_STABLE_ROUTING` build.
#[test]
fn stable_rt_fixtures() {
    check(
        Suite {
            name: "stable_rt",
            defines: "-DGUE_ENCAP -DGUE_DPORT=9886 -DUDP_STABLE_ROUTING",
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranUdpStableRtTestFixtures.h",
                    vector: "udpStableRtFixtures",
                    prepare: &[prov::prepare_lb_data_stable_rt],
                },
            ],
        },
        0,
    );
}

/// `KatranTPRTestFixtures.h`'s GUE flavour on a GUE, `TCP_SERVER_ID_ROUTING` build.
#[test]
fn tpr_gue_fixtures() {
    check(
        Suite {
            name: "tpr_gue",
            defines: "-DGUE_ENCAP -DGUE_DPORT=9886 -DTCP_SERVER_ID_ROUTING",
            gue: true,
            phases: vec![Phase {
                file: "KatranTPRTestFixtures.h",
                vector: "tprGueTestFixtures",
                prepare: &[
                    prov::prepare_lb_data,
                    prov::prepare_vip_uninitialized_lb_data,
                ],
            }],
        },
        0,
    );
}

/// The optional features `--optional_tests` needs: source routing (LPM tries), ICMP
/// too-big generation, inline IPIP decap, local delivery.
const OPTIONAL: &str =
    "-DLPM_SRC_LOOKUP -DICMP_TOOBIG_GENERATION -DINLINE_DECAP_IPIP -DLOCAL_DELIVERY_OPTIMIZATION";

/// `--optional_tests` without GUE: base, then (after `prepareOptionalLbData`) the ICMP
/// too-big fixtures. (The LPM source-routing fixtures expect GUE: [`optional_gue_fixtures`].)
#[test]
fn optional_fixtures() {
    check(
        Suite {
            name: "optional",
            defines: OPTIONAL,
            gue: false,
            phases: vec![
                base_phase(),
                Phase {
                    file: "KatranIcmpTooBigTestFixtures.h",
                    vector: "icmpTooBigTestFixtures",
                    prepare: &[prov::prepare_optional_lb_data],
                },
            ],
        },
        0,
    );
}

/// `--gue --optional_tests`: as [`optional_fixtures`], with GUE encapsulation and inline GUE
/// decap, and the origin-GUE ICMP too-big fixtures.
#[test]
fn optional_gue_fixtures() {
    check(
        Suite {
            name: "optional_gue",
            defines: "-DGUE_ENCAP -DGUE_DPORT=9886 -DLPM_SRC_LOOKUP -DICMP_TOOBIG_GENERATION \
                      -DINLINE_DECAP_GUE -DLOCAL_DELIVERY_OPTIMIZATION",
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranIcmpTooBigTestFixtures.h",
                    vector: "originGueIcmpTooBigTestFixtures",
                    prepare: &[prov::prepare_optional_lb_data],
                },
                Phase {
                    file: "KatranLpmSrcLookupTestFixtures.h",
                    vector: "lpmSrcLookupTestFixtures",
                    prepare: &[],
                },
            ],
        },
        0,
    );
}

/// Cross-pop decap: GUE build with inline GUE decap and strict destination.
const XPOP: &str = "-DGUE_ENCAP -DGUE_DPORT=9886 -DINLINE_DECAP_GUE -DDECAP_STRICT_DESTINATION";

/// `--gue --xpop_decap`.
#[test]
fn xpop_decap_fixtures() {
    check(
        Suite {
            name: "xpop",
            defines: XPOP,
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranXPopDecapTestFixtures.h",
                    vector: "xPopDecapTestFixtures",
                    prepare: &[prov::prepare_lb_data_xpop_decap],
                },
            ],
        },
        0,
    );
}

/// `--gue --egress_decap`.
#[test]
fn egress_decap_fixtures() {
    check(
        Suite {
            name: "egress",
            defines: XPOP,
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranEgressDecapTestFixtures.h",
                    vector: "egressDecapTestFixtures",
                    prepare: &[
                        prov::prepare_lb_data_xpop_decap,
                        prov::prepare_lb_data_egress_decap,
                    ],
                },
            ],
        },
        0,
    );
}

/// `KatranCidrVipTestFixtures.h` (GUE, `CIDR_VIP`): GUE base, then `prepareCidrVipLbData`.
#[test]
fn cidr_vip_fixtures() {
    check(
        Suite {
            name: "cidr_vip",
            defines: "-DGUE_ENCAP -DGUE_DPORT=9886 -DCIDR_VIP",
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranCidrVipTestFixtures.h",
                    vector: "cidrVipTestFixtures",
                    prepare: &[prov::prepare_cidr_vip_lb_data],
                },
            ],
        },
        0,
    );
}

/// `KatranDecapStatsTestFixtures.h` (GUE, `INLINE_DECAP_GUE`): GUE base, then the decap
/// fixtures.
#[test]
fn decap_stats_fixtures() {
    check(
        Suite {
            name: "decap_stats",
            defines: "-DGUE_ENCAP -DGUE_DPORT=9886 -DINLINE_DECAP_GUE",
            gue: true,
            phases: vec![
                gue_phase(),
                Phase {
                    file: "KatranDecapStatsTestFixtures.h",
                    vector: "GUEDecapTestFixtures",
                    prepare: &[],
                },
            ],
        },
        0,
    );
}

fn tc_code(r: u32) -> &'static str {
    match r as i32 {
        -1 => "TC_ACT_UNSPEC",
        0 => "TC_ACT_OK",
        1 => "TC_ACT_RECLASSIFY",
        2 => "TC_ACT_SHOT",
        3 => "TC_ACT_PIPE",
        4 => "TC_ACT_STOLEN",
        5 => "TC_ACT_QUEUED",
        6 => "TC_ACT_REPEAT",
        7 => "TC_ACT_REDIRECT",
        _ => "UNKNOWN",
    }
}

/// Katran's GUE port (`GUE_DPORT` of the GUE builds).
const GUE_DPORT: u16 = 9886;

/// The GUE healthchecker's outer UDP source port is `bpf_get_prandom_u32() | 0x400`
/// (`gue_sport`, stored without `htons` by `create_udp_hdr`): random on the kernel and on
/// kbpf alike, so no two runs agree on those two bytes. Where `out` is Ethernet + IPv4/IPv6 + UDP to `GUE_DPORT` with bit 0x400 of the
/// source port set, the port is replaced by `expected`'s (Katran's fixture value) so that
/// every other byte is compared; returns whether it did.
fn mask_gue_sport(out: &mut [u8], expected: &[u8]) -> bool {
    let l4 = match out.get(12..14) {
        Some([0x08, 0x00]) => 14 + 20,
        Some([0x86, 0xdd]) => 14 + 40,
        _ => return false,
    };
    let (Some(port), Some(want)) = (out.get(l4..l4 + 4), expected.get(l4..l4 + 2)) else {
        return false;
    };
    let (sport, dport) = (
        u16::from_ne_bytes([port[0], port[1]]),
        u16::from_be_bytes([port[2], port[3]]),
    );
    if dport != GUE_DPORT || sport & 0x400 == 0 {
        return false;
    }
    let want = [want[0], want[1]];
    out[l4..l4 + 2].copy_from_slice(&want);
    true
}

/// `testHcFromFixture`: the healthchecker (`healthcheck_encap`, TC) on fixture `i` with
/// `struct __sk_buff { .mark = i }`, as `getInputCtxsForHcTest`. Returns the counts and the
/// kbpf-vs-kernel mismatches. With `random_sport` (the GUE build), the outer source port is
/// masked on every side ([`mask_gue_sport`]).
fn run_hc(
    variant: &str,
    defines: &str,
    vector: &str,
    kernel_ok: bool,
    random_sport: bool,
) -> Result<(Counts, Vec<String>), String> {
    use kbpf_katran::runner::KbpfBalancer as Kb;
    const PROG: &str = "healthcheck_encap";
    let object = build_objects(variant, defines)?.join("healthchecking.bpf.o");
    let mut interp = Kb::load_prog(&object, PROG, Engine::Interpreter);
    let mut jit = Kb::load_prog(&object, PROG, Engine::Jit);
    let mut kernel = kernel_ok.then(|| KernelBalancer::load_prog(&object, PROG));
    let mut lb = Lb::new()?;
    lb.take_ops(); // the balancer's ctl_array: not in this object
    lb.setup_hc()?;
    let ops = lb.take_ops();
    for b in [&mut interp, &mut jit].into_iter().flatten() {
        apply(b, &ops).map_err(|e| format!("kbpf: provisioning failed: {e}"))?;
    }
    if let Some(Ok(k)) = &mut kernel {
        apply(k, &ops).map_err(|e| format!("kernel provisioning failed: {e}"))?;
    }
    let label = format!("[{variant}] KatranHCTestFixtures.h:{vector}");
    let fixtures = read_vector("KatranHCTestFixtures.h", vector);
    let mut c = Counts::default();
    let mut mismatches = Vec::new();
    let tc_matches = |o: &RunOut, f: &Fixture| {
        tc_code(o.retval) == f.expected_return
            && f.expected_output.as_ref().is_ok_and(|e| *e == o.data)
    };
    let show = |r: &Result<RunOut, String>| match r {
        Ok(o) => format!("{} {}", tc_code(o.retval), hex(&o.data)),
        Err(e) => format!("error: {e}"),
    };
    for (n, f) in fixtures.iter().enumerate() {
        c.total += 1;
        let Ok(input) = &f.input else {
            c.not_built += 1;
            continue;
        };
        let mut ctx = vec![0u8; 192];
        ctx[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
        let line = format!("{label} #{} {}", f.index, f.description);
        let i = interp
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|b| b.run_ctx(input, Some(&ctx)));
        let j = jit
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|b| b.run_ctx(input, Some(&ctx)));
        let mut k = kernel.as_ref().map(|k| {
            k.as_ref()
                .map_err(Clone::clone)
                .and_then(|k| k.run_ctx(input, Some(&ctx)))
        });
        let (mut i, mut j) = (i, j);
        if random_sport && let Ok(e) = &f.expected_output {
            let mut masked = 0;
            for o in [
                i.as_mut().ok(),
                j.as_mut().ok(),
                k.as_mut().and_then(|k| k.as_mut().ok()),
            ]
            .into_iter()
            .flatten()
            {
                masked += usize::from(mask_gue_sport(&mut o.data, e));
            }
            if masked > 0 {
                println!(
                    "{line}: outer UDP source port masked on {masked} side(s) (bpf_get_prandom_u32)"
                );
            }
        }
        if let (Err(e), _) | (_, Err(e)) = (&interp, &jit) {
            c.kbpf_cannot += 1;
            println!("{line}: kbpf cannot run it: {}", kbpf_reason(e));
        }
        match &k {
            Some(Ok(ko)) => {
                c.kernel_ran += 1;
                let ie = i.as_ref().is_ok_and(|o| o == ko);
                let je = j.as_ref().is_ok_and(|o| o == ko);
                c.interp_eq_kernel += usize::from(ie);
                c.jit_eq_kernel += usize::from(je);
                c.kernel_eq_katran += usize::from(tc_matches(ko, f));
                if (!ie || !je) && interp.is_ok() && jit.is_ok() {
                    mismatches.push(format!(
                        "{line}\n  kernel: {}\n  interp: {}\n  jit:    {}",
                        show(&Ok(ko.clone())),
                        show(&i),
                        show(&j)
                    ));
                }
            }
            Some(Err(e)) => println!(
                "{line}: kernel cannot run it: {}",
                e.lines().next().unwrap_or("")
            ),
            None => {}
        }
        c.interp_eq_katran += usize::from(i.as_ref().is_ok_and(|o| tc_matches(o, f)));
        c.jit_eq_katran += usize::from(j.as_ref().is_ok_and(|o| tc_matches(o, f)));
        if !matches!(&k, Some(Ok(ko)) if tc_matches(ko, f)) {
            print_expectation_miss(&line, f, &i, &k, tc_code);
        }
    }
    report(&label, &c);
    Ok((c, mismatches))
}

/// A fixture whose result differs from Katran's expectation: what each side gave, return
/// codes named by `code`.
fn print_expectation_miss(
    line: &str,
    f: &Fixture,
    i: &Result<RunOut, String>,
    k: &Option<Result<RunOut, String>>,
    code: fn(u32) -> &'static str,
) {
    let show = |r: &Result<RunOut, String>| match r {
        Ok(o) => format!("{} {}", code(o.retval), hex(&o.data)),
        Err(e) => format!("error: {e}"),
    };
    println!(
        "{line}: differs from Katran's expectation\n  expected: {} {}\n  kbpf:     {}\n  kernel:   {}",
        f.expected_return,
        f.expected_output
            .as_ref()
            .map_or_else(|e| format!("(not built: {e})"), |p| hex(p)),
        show(i),
        k.as_ref().map_or_else(|| "(not run)".to_string(), show)
    );
}

/// Why kbpf refuses a program, with the helper named where the verifier gives its number.
fn kbpf_reason(e: &str) -> String {
    let first = e.lines().next().unwrap_or("").to_string();
    for (id, name) in [(50, "bpf_skb_adjust_room"), (21, "bpf_skb_set_tunnel_key")] {
        if first.contains(&format!("unknown#{id}")) {
            return format!("{first} (helper {id} = {name}: no prototype in kbpf's verifier yet)");
        }
    }
    first
}

/// `KatranHCTestFixtures.h`: `hcTestFixtures` on the IPIP healthchecker, `hcGueTestFixtures`
/// on the GUE one.
#[test]
fn hc_fixtures() {
    let Some(kernel_ok) = prerequisites() else {
        return;
    };
    let mut cannot = 0;
    for (variant, defines, vector, random_sport) in [
        ("hc", "-DHC_WITH_REDIRECT=1", "hcTestFixtures", false),
        (
            "hc_gue",
            "-DGUE_ENCAP -DGUE_DPORT=9886 -DHC_WITH_REDIRECT=1",
            "hcGueTestFixtures",
            true,
        ),
    ] {
        let (c, mismatches) = match run_hc(variant, defines, vector, kernel_ok, random_sport) {
            Ok(r) => r,
            Err(e) if e.starts_with(MISSING) => {
                skip(&e);
                return;
            }
            Err(e) => panic!("[{variant}] {e}"),
        };
        assert!(
            mismatches.is_empty(),
            "[{variant}] kbpf differs from the kernel:\n{}",
            mismatches.join("\n")
        );
        if kernel_ok {
            assert_eq!(
                c.kernel_ran + c.not_built,
                c.total,
                "[{variant}] every built fixture runs on the kernel"
            );
        }
        cannot += c.kbpf_cannot;
    }
    // Baseline: fixtures kbpf cannot run yet (reasons printed above).
    assert_eq!(
        cannot, 0,
        "HC fixtures kbpf cannot run: update the baseline when it improves"
    );
}
