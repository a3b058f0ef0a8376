//! kbpf's verifier suite from the Linux kernel's own BPF verifier selftests
//! (`tools/testing/selftests/bpf/progs/verifier_*.c` of Linux 6.12, built by
//! `scripts/selftests.sh` from the `linux-source-6.12` package).
//!
//! Every program of every object is measured two ways:
//! - (a) against the live kernel, per program: the kernel oracle `kload` loads it alone
//!   through libbpf (under the selftests' conditions: `testing_prog_flags()` and the test's
//!   `__flag`s, its `__log_level`, its `__auxiliary` companions, without `CAP_SYS_ADMIN`
//!   as `prog_tests/verifier.c` runs), kbpf verifies it alone (`kbpf_run::verify_each`
//!   under the host's kernel profile); verdicts and error lines are compared;
//! - (b) against the tests' own expectations, the BTF decl tags of `bpf_misc.h` read as
//!   the kernel's `test_loader.c` reads them ([`spec`]): the expected verdict, every
//!   `__msg` in order in the log and the `__retval` of one test run, on the kernel and on
//!   kbpf (privileged mode; unprivileged expectations are counted, not checked; `__xlated`
//!   and `__jited` are counted, not checked).
//!
//! [`Suite::run`] does both; [`Suite::markdown`] is `docs/selftests.md`. [`gaps`] groups the
//! tests whose expectations the kernel meets and kbpf does not by cause; [`veristat`]
//! compares `kbpf veristat` with the tree's own veristat over the same objects.

#![deny(missing_docs)]

pub mod artifacts;
pub mod elf;
pub mod gaps;
pub mod kernel;
pub mod spec;
pub mod veristat;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use artifacts::{Artifacts, BuildStatus};
use kernel::{KernelResult, PlanEntry};
use spec::TestSpec;

/// How kbpf judged one program.
#[derive(Clone, Debug, Default)]
pub struct KbpfResult {
    /// Accepted (verified and rewritten).
    pub accepted: bool,
    /// The failure's message: the verifier's message (its error line), or what stopped the
    /// program before the verifier (`open: …` when the object could not be read).
    pub message: String,
    /// errno of the failure.
    pub errno: i32,
    /// The verifier log.
    pub log: String,
    /// `insn_processed`.
    pub insns: usize,
    /// Log level used.
    pub log_level: u32,
    /// Time in verifier and rewrite.
    pub duration: Duration,
    /// The test run's return value, or why it failed (only for tests with a `__retval`).
    pub retval: Option<Result<i32, String>>,
}

/// The kernel's verdict on one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelVerdict {
    /// Loaded.
    Accept,
    /// Refused (by the verifier, or by libbpf/the kernel before it).
    Reject,
    /// Not judged on this machine ([`KernelResult::unavailable`]).
    Unavailable,
}

/// One program of one object, measured.
#[derive(Clone, Debug)]
pub struct ProgramRow {
    /// Source file (`verifier_and`).
    pub file: String,
    /// Program name.
    pub name: String,
    /// ELF section.
    pub section: String,
    /// Its test specification (`Err` where test_loader cannot parse one).
    pub spec: Result<TestSpec, String>,
    /// The kernel's result.
    pub kernel: KernelResult,
    /// kbpf's result.
    pub kbpf: KbpfResult,
}

/// An expectation of a test, checked against one verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// The verdict and every `__msg` as expected.
    Met,
    /// Accepted where `__failure` or rejected where `__success` (or no annotation).
    WrongVerdict,
    /// The verdict held, a message did not.
    MissingMsg(String),
    /// Loaded and matched, but the test run failed or returned something else.
    WrongRetval(String),
    /// Not checked: the kernel did not judge the program here.
    Unavailable,
}

impl ProgramRow {
    /// `file/program`: the key of the ratchet files.
    pub fn key(&self) -> String {
        format!("{}/{}", self.file, self.name)
    }

    /// The kernel's verdict.
    pub fn kernel_verdict(&self) -> KernelVerdict {
        if self.kernel.accepted {
            KernelVerdict::Accept
        } else if self.kernel.unavailable() {
            KernelVerdict::Unavailable
        } else {
            KernelVerdict::Reject
        }
    }

    /// Both verifiers judged it.
    pub fn compared(&self) -> bool {
        self.kernel_verdict() != KernelVerdict::Unavailable
    }

    /// Same verdict (of those compared).
    pub fn same_verdict(&self) -> bool {
        self.compared() && self.kernel.accepted == self.kbpf.accepted
    }

    /// kbpf accepts what the kernel rejects: a soundness mismatch.
    pub fn unsound(&self) -> bool {
        self.kbpf.accepted && self.kernel_verdict() == KernelVerdict::Reject
    }

    /// kbpf rejects what the kernel accepts.
    pub fn too_strict(&self) -> bool {
        !self.kbpf.accepted && self.kernel_verdict() == KernelVerdict::Accept
    }

    /// kbpf's verifier judged the program (it accepted, or rejected with a log): not
    /// stopped before, by an object, map type or program type kbpf does not support.
    pub fn kbpf_verified(&self) -> bool {
        self.kbpf.accepted || !self.kbpf.log.is_empty()
    }

    /// Both reject, and kbpf's verifier was the one that rejected.
    pub fn both_reject_verified(&self) -> bool {
        self.both_reject() && self.kbpf_verified()
    }

    /// Both reject and kbpf's message is one of the lines of the kernel's log (the kernel
    /// may print more after its message, e.g. the states of an infinite loop).
    pub fn kbpf_message_in_kernel_log(&self) -> bool {
        let m = self.kbpf.message.trim();
        self.both_reject() && !m.is_empty() && self.kernel.log.lines().any(|l| l.trim() == m)
    }

    /// Both reject.
    pub fn both_reject(&self) -> bool {
        !self.kbpf.accepted && self.kernel_verdict() == KernelVerdict::Reject
    }

    /// Both reject with exactly the same error line (kbpf's message and the kernel's last
    /// line before the statistics).
    pub fn same_error_line(&self) -> bool {
        self.both_reject() && self.kbpf.message.trim() == self.kernel.error_line.trim()
    }

    /// Both reject with the same error line once register numbers are stripped.
    pub fn same_error_line_modulo_regs(&self) -> bool {
        self.both_reject()
            && strip_regs(self.kbpf.message.trim()) == strip_regs(self.kernel.error_line.trim())
    }

    /// A privileged test on x86-64 (not an auxiliary program, parsable spec).
    pub fn priv_test(&self) -> Option<&TestSpec> {
        self.spec.as_ref().ok().filter(|s| s.is_priv_test())
    }

    /// The privileged expectation checked against the kernel's load (`None`: not a test).
    pub fn kernel_expectation(&self) -> Option<Expectation> {
        let spec = self.priv_test()?;
        if self.kernel_verdict() == KernelVerdict::Unavailable {
            return Some(Expectation::Unavailable);
        }
        let run = self
            .kernel
            .retval
            .ok_or_else(|| format!("test run failed: errno {}", self.kernel.run_errno));
        Some(expectation(
            spec,
            self.kernel.accepted,
            &self.kernel.log,
            Some(&run),
        ))
    }

    /// The privileged expectation checked against kbpf.
    pub fn kbpf_expectation(&self) -> Option<Expectation> {
        let spec = self.priv_test()?;
        Some(expectation(
            spec,
            self.kbpf.accepted,
            &self.kbpf.log,
            self.kbpf.retval.as_ref(),
        ))
    }

    /// The kernel meets the test's expectations and kbpf does not: issue #13's Done-when
    /// set ([`gaps`]).
    pub fn expectation_gap(&self) -> bool {
        self.kernel_expectation() == Some(Expectation::Met)
            && self.kbpf_expectation() != Some(Expectation::Met)
    }

    /// Both reject, but kbpf for another reason than the kernel's (its message is none of
    /// the kernel's log lines): a soundness mismatch may hide behind kbpf's rejection.
    pub fn masked(&self) -> bool {
        self.both_reject() && !self.same_error_line() && !self.kbpf_message_in_kernel_log()
    }

    /// kbpf stopped for a missing feature: before its verifier (object, map type, program
    /// type), or at a helper it does not know.
    pub fn kbpf_missing_feature(&self) -> bool {
        !self.kbpf.accepted
            && (!self.kbpf_verified() || self.kbpf.message.starts_with("invalid func unknown#"))
    }

    /// The cause class of a soundness mismatch (from the kernel's error line).
    pub fn soundness_class(&self) -> &'static str {
        match self.file.as_str() {
            // The file is the topic: its messages (e.g. "R9 !read_ok" after a subprogram's
            // implicit return) say less than its name.
            "verifier_ld_ind" => "legacy packet loads (LD_ABS/LD_IND)",
            _ => classify(&self.kernel.error_line),
        }
    }
}

/// test_loader's verdict, `__msg` and `__retval` checks (in its order: the verdict first,
/// then the messages, then the run). `run` is the test run's outcome where one was made.
fn expectation(
    spec: &TestSpec,
    accepted: bool,
    log: &str,
    run: Option<&Result<i32, String>>,
) -> Expectation {
    if accepted == spec.privileged.expect_failure {
        return Expectation::WrongVerdict;
    }
    if let Err(e) = spec::validate_msgs(log, &spec.privileged.msgs) {
        return Expectation::MissingMsg(e);
    }
    if spec.should_run() {
        match run {
            Some(Ok(r)) if spec.retval_matches(*r) => {}
            Some(Ok(r)) => {
                return Expectation::WrongRetval(format!(
                    "retval {r} != {}",
                    spec.privileged.retval.unwrap_or_default()
                ));
            }
            Some(Err(e)) => return Expectation::WrongRetval(e.clone()),
            None => return Expectation::WrongRetval("not run".into()),
        }
    }
    Expectation::Met
}

/// `R1`/`r1` → `R?`/`r?`.
pub fn strip_regs(s: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"\b([Rr])[0-9]+\b").unwrap())
        .replace_all(s, "$1?")
        .into_owned()
}

/// The last non-empty line before the `processed N insns` line (the last non-empty line
/// when there is none), skipping kbpf's `hint:` lines: what kload reports as the kernel's
/// error line, for kbpf's log.
pub fn error_line(log: &str) -> String {
    let mut last = "";
    for line in log.lines() {
        if line.starts_with("processed ") && line.contains(" insns") {
            break;
        }
        if line.trim().is_empty() || line.starts_with("hint:") {
            continue;
        }
        last = line;
    }
    last.to_owned()
}

/// Soundness classes: a pattern of the kernel's error line and the cause it names (the
/// kernel check kbpf misses).
const CLASSES: &[(&str, &str)] = &[
    (
        r"^R\d+ type=scalar expected=fp$",
        "helper memory argument: NULL (scalar 0) for ARG_PTR_TO_MEM_OR_NULL with a size that may be non-zero",
    ),
    (
        r"write into map forbidden|read from map forbidden",
        "BPF_F_RDONLY_PROG/BPF_F_WRONLY_PROG map access",
    ),
    (
        r"subtraction from stack pointer|math between fp pointer|fp pointer offset",
        "stack pointer arithmetic",
    ),
    (
        r"invalid bpf_context access|ctx access|ctx ptr|ctx is not allowed",
        "context access (incl. sign-extending loads, atomics)",
    ),
    (
        r"invalid (read|write) (from|to) stack|invalid indirect (read|access)|variable.*stack",
        "stack access bounds",
    ),
    (
        r"outside of the (allowed memory range|packet)|unbounded memory access|min value is negative|invalid access to (map value|packet)|zero-sized read|invalid variable buffer offset|invalid negative access",
        "map value/packet/buffer bounds",
    ),
    (
        r"sock access|sock_common access|tcp_sock access|into sock",
        "socket pointer access",
    ),
    (
        r"cannot write into packet|only read (from bpf_array )?is supported|same insn cannot be used with different pointers",
        "write permission and pointer kinds per instruction",
    ),
    (
        r"leaks addr|pointer comparison|pointer arithmetic|math between",
        "pointer leaks and pointer arithmetic",
    ),
    (r"At program exit|R0 (has|is)", "return value range"),
    (
        r"iter|dynptr|Caller passes invalid args|func#",
        "kfunc, iterator and global function arguments",
    ),
    (
        r"unknown func|helper|cannot pass map_type|kfunc|kernel function|timer|get_local_storage|not pointing to valid bpf_map",
        "helper availability and arguments",
    ),
    (
        r"infinite loop|back-edge|jump out of range|unreachable|old state",
        "control flow",
    ),
    (r"reference|release|lock", "references and locks"),
    (r"misaligned|alignment", "alignment"),
    (r"div by zero", "division by zero"),
    (
        r"too large|call stack of|stack depth",
        "limits (program size, call depth, stack depth)",
    ),
    (
        r"LD_ABS|LD_IND|LD_\[ABS",
        "legacy packet loads (LD_ABS/LD_IND)",
    ),
    (
        r"invalid mem access|!read_ok|type=|invalid size",
        "register types",
    ),
    (
        r"REG INVARIANTS|invariant",
        "register invariants (BPF_F_TEST_REG_INVARIANTS)",
    ),
];

fn classify(error_line: &str) -> &'static str {
    static RES: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> = std::sync::OnceLock::new();
    let res = RES.get_or_init(|| {
        CLASSES
            .iter()
            .map(|(p, c)| (regex::Regex::new(p).unwrap(), *c))
            .collect()
    });
    res.iter()
        .find(|(re, _)| re.is_match(error_line))
        .map(|(_, c)| *c)
        .unwrap_or("other")
}

/// The counts of a set of rows (one file, or all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Programs.
    pub programs: usize,
    /// Programs the kernel could not judge here.
    pub kernel_unavailable: usize,
    /// Programs both judged.
    pub compared: usize,
    /// Same verdict.
    pub same_verdict: usize,
    /// kbpf accepts, the kernel rejects.
    pub unsound: usize,
    /// kbpf rejects, the kernel accepts.
    pub too_strict: usize,
    /// Both reject.
    pub both_reject: usize,
    /// Both reject with the same error line.
    pub same_error_line: usize,
    /// Both reject with the same error line modulo register numbers.
    pub same_error_line_modulo_regs: usize,
    /// Both reject and kbpf's message is a line of the kernel's log.
    pub kbpf_message_in_kernel_log: usize,
    /// kbpf could not verify (unsupported object, map or program type).
    pub kbpf_unsupported: usize,
    /// Compared programs kbpf's verifier judged.
    pub compared_verified: usize,
    /// Of those, same verdict.
    pub same_verdict_verified: usize,
    /// Both reject, kbpf's verifier rejected.
    pub both_reject_verified: usize,
    /// Of those, same error line.
    pub same_error_line_verified: usize,
    /// Privileged tests (x86-64, not auxiliary).
    pub priv_tests: usize,
    /// Of those, judged by the kernel here.
    pub priv_tests_kernel: usize,
    /// Expectations met by the kernel.
    pub kernel_met: usize,
    /// Of those not met by the kernel: the verdict was wrong.
    pub kernel_wrong_verdict: usize,
    /// Expectations met by kbpf.
    pub kbpf_met: usize,
    /// Of those not met by kbpf: the verdict was wrong.
    pub kbpf_wrong_verdict: usize,
    /// Expectations met by kbpf where the kernel meets them (of `kernel_met`).
    pub kbpf_met_where_kernel_met: usize,
    /// Tests with an unprivileged mode (not applicable yet).
    pub unpriv_tests: usize,
    /// Privileged tests with a `__retval` that test_loader runs.
    pub retval_tests: usize,
    /// Of those, the kernel's run returned the expected value.
    pub kernel_retval_ok: usize,
    /// Of those, kbpf's run returned the expected value.
    pub kbpf_retval_ok: usize,
    /// Privileged tests with `__xlated` or `__jited` lines (not checked).
    pub disasm_tests: usize,
    /// Programs whose test sets flags beyond `testing_prog_flags()` (`__flag`), which the
    /// kernel gets and kbpf (no program flags) does not.
    pub flagged: usize,
    /// Of those, compared with a different verdict.
    pub flagged_mismatch: usize,
    /// Programs both accepted, with the kernel's `verified_insns` known.
    pub both_accept: usize,
    /// Of those, kbpf's `processed` count equals the kernel's (veristat's `total_insns`).
    pub same_insns: usize,
    /// Programs both judged with the kernel's verification time known: the kernel's summed
    /// `verification time` (µs) and kbpf's summed verify + rewrite time (µs).
    pub timed: usize,
    /// Kernel verification time, µs.
    pub kernel_us: u64,
    /// kbpf verification time, µs.
    pub kbpf_us: u64,
}

impl Counts {
    fn add(&mut self, r: &ProgramRow) {
        self.programs += 1;
        self.kernel_unavailable += usize::from(!r.compared());
        self.compared += usize::from(r.compared());
        self.same_verdict += usize::from(r.same_verdict());
        self.unsound += usize::from(r.unsound());
        self.too_strict += usize::from(r.too_strict());
        self.both_reject += usize::from(r.both_reject());
        self.same_error_line += usize::from(r.same_error_line());
        self.same_error_line_modulo_regs += usize::from(r.same_error_line_modulo_regs());
        self.kbpf_message_in_kernel_log += usize::from(r.kbpf_message_in_kernel_log());
        self.kbpf_unsupported += usize::from(!r.kbpf_verified());
        if r.compared() && r.kbpf.accepted && r.kernel.accepted && r.kernel.verified_insns >= 0 {
            self.both_accept += 1;
            self.same_insns += usize::from(r.kbpf.insns as i64 == r.kernel.verified_insns);
        }
        if r.compared() && r.kbpf_verified() && r.kernel.verify_us >= 0 {
            self.timed += 1;
            self.kernel_us += r.kernel.verify_us as u64;
            self.kbpf_us += r.kbpf.duration.as_micros() as u64;
        }
        if r.compared() && r.kbpf_verified() {
            self.compared_verified += 1;
            self.same_verdict_verified += usize::from(r.same_verdict());
        }
        self.both_reject_verified += usize::from(r.both_reject_verified());
        self.same_error_line_verified +=
            usize::from(r.both_reject_verified() && r.same_error_line());
        if let Ok(s) = &r.spec {
            self.unpriv_tests += usize::from(s.is_unpriv_test());
            if s.prog_flags != spec::TESTING_PROG_FLAGS {
                self.flagged += 1;
                self.flagged_mismatch += usize::from(r.compared() && !r.same_verdict());
            }
        }
        if let Some(s) = r.priv_test() {
            self.priv_tests += 1;
            if s.should_run() {
                self.retval_tests += 1;
                self.kernel_retval_ok +=
                    usize::from(r.kernel.retval.is_some_and(|v| s.retval_matches(v)));
                self.kbpf_retval_ok +=
                    usize::from(matches!(&r.kbpf.retval, Some(Ok(v)) if s.retval_matches(*v)));
            }
            self.disasm_tests +=
                usize::from(!s.privileged.xlated.is_empty() || !s.privileged.jited.is_empty());
            match r.kernel_expectation() {
                Some(Expectation::Met) => {
                    self.priv_tests_kernel += 1;
                    self.kernel_met += 1;
                }
                Some(Expectation::WrongVerdict) => {
                    self.priv_tests_kernel += 1;
                    self.kernel_wrong_verdict += 1;
                }
                Some(Expectation::MissingMsg(_) | Expectation::WrongRetval(_)) => {
                    self.priv_tests_kernel += 1
                }
                _ => {}
            }
            self.kbpf_met_where_kernel_met += usize::from(
                r.kernel_expectation() == Some(Expectation::Met)
                    && r.kbpf_expectation() == Some(Expectation::Met),
            );
            match r.kbpf_expectation() {
                Some(Expectation::Met) => self.kbpf_met += 1,
                Some(Expectation::WrongVerdict) => self.kbpf_wrong_verdict += 1,
                _ => {}
            }
        }
    }
}

/// The whole measurement.
#[derive(Debug)]
pub struct Suite {
    /// The build.
    pub artifacts: Artifacts,
    /// Every program of every compiled object, by file then libbpf's order.
    pub rows: Vec<ProgramRow>,
    /// Objects that could not be measured at all (file, why).
    pub errors: Vec<(String, String)>,
    /// The kernel release measured against.
    pub kernel_release: String,
    /// Wall time of the kernel side (kload, all objects).
    pub kernel_time: Duration,
    /// Wall time of kbpf's side.
    pub kbpf_time: Duration,
}

struct ObjectPlan {
    file: String,
    path: std::path::PathBuf,
    programs: Vec<elf::ObjProgram>,
    specs: Vec<Result<TestSpec, String>>,
    /// The `__btf_path` of the object's tests (one per object in the suite), absolute.
    core_btf: Option<std::path::PathBuf>,
}

impl Suite {
    /// Measures every compiled object: the kernel through `kload` (two processes at a time)
    /// and kbpf under `profile`, concurrently.
    pub fn run(artifacts: Artifacts, profile: &kbpf_run::program::LoadOptions) -> Suite {
        let mut errors = Vec::new();
        let mut plans = Vec::new();
        for src in &artifacts.sources {
            let Some(path) = src.object(&artifacts) else {
                continue;
            };
            match elf::read(&path) {
                Ok(info) => {
                    let specs: Vec<Result<TestSpec, String>> = info
                        .programs
                        .iter()
                        .map(|p| match &info.btf {
                            Some(btf) => spec::parse(btf, &p.name),
                            None => Err("BPF object has no BTF".to_owned()),
                        })
                        .collect();
                    let core_btf = specs
                        .iter()
                        .filter_map(|s: &Result<TestSpec, String>| s.as_ref().ok())
                        .find_map(|s| s.btf_path.as_ref())
                        .map(|b| artifacts.obj_dir().join(b));
                    plans.push(ObjectPlan {
                        file: src.name.clone(),
                        path,
                        programs: info.programs,
                        specs,
                        core_btf,
                    });
                }
                Err(e) => errors.push((src.name.clone(), e)),
            }
        }

        let kernel_results: Mutex<HashMap<String, Result<Vec<KernelResult>, String>>> =
            Mutex::new(HashMap::new());
        let next = AtomicUsize::new(0);
        let mut kbpf_results: HashMap<String, HashMap<String, KbpfResult>> = HashMap::new();
        let (mut kernel_time, mut kbpf_time) = (Duration::ZERO, Duration::ZERO);
        std::thread::scope(|s| {
            let start = Instant::now();
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(p) = plans.get(i) else { break };
                            let r = kernel::load_each(
                                &artifacts.kload,
                                &p.path,
                                &kernel_plan(p, &artifacts.obj_dir()),
                                kernel::CAP_SYS_ADMIN
                                    | if p.file == "verifier_mtu" {
                                        kernel::CAP_PERFMON
                                    } else {
                                        0
                                    },
                                init_map(&p.file),
                            );
                            kernel_results.lock().unwrap().insert(p.file.clone(), r);
                        }
                    })
                })
                .collect();
            let kstart = Instant::now();
            for p in &plans {
                kbpf_results.insert(p.file.clone(), kbpf_side(p, profile));
            }
            kbpf_time = kstart.elapsed();
            for w in workers {
                w.join().expect("kernel worker");
            }
            kernel_time = start.elapsed();
        });

        let mut kernel_results = kernel_results.into_inner().unwrap();
        let mut rows = Vec::new();
        for p in plans {
            let mut kres: HashMap<String, KernelResult> = match kernel_results.remove(&p.file) {
                Some(Ok(v)) => v.into_iter().map(|r| (r.name.clone(), r)).collect(),
                Some(Err(e)) => {
                    errors.push((p.file.clone(), e));
                    HashMap::new()
                }
                None => HashMap::new(),
            };
            let mut kb = kbpf_results.remove(&p.file).unwrap_or_default();
            for (prog, spec) in p.programs.into_iter().zip(p.specs) {
                let kernel = kres.remove(&prog.name).unwrap_or_else(|| KernelResult {
                    name: prog.name.clone(),
                    stage: "missing".into(),
                    error_line: "kload reported nothing".into(),
                    errno: 1,
                    ..Default::default()
                });
                let kbpf = kb.remove(&prog.name).unwrap_or_else(|| KbpfResult {
                    message: "kbpf: program not listed by verify_each".into(),
                    errno: 22,
                    ..Default::default()
                });
                rows.push(ProgramRow {
                    file: p.file.clone(),
                    name: prog.name,
                    section: prog.section,
                    spec,
                    kernel,
                    kbpf,
                });
            }
        }
        let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Suite {
            artifacts,
            rows,
            errors,
            kernel_release,
            kernel_time,
            kbpf_time,
        }
    }

    /// Counts over all rows.
    pub fn totals(&self) -> Counts {
        let mut c = Counts::default();
        self.rows.iter().for_each(|r| c.add(r));
        c
    }

    /// Counts per file.
    pub fn per_file(&self) -> BTreeMap<String, Counts> {
        let mut m: BTreeMap<String, Counts> = BTreeMap::new();
        for r in &self.rows {
            m.entry(r.file.clone()).or_default().add(r);
        }
        m
    }

    /// The soundness mismatches (`file/program`), sorted.
    pub fn unsound(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.unsound())
            .map(|r| r.key())
            .collect();
        v.sort();
        v
    }

    /// One line: the headline numbers.
    pub fn summary_line(&self) -> String {
        let t = self.totals();
        format!(
            "selftests: {} programs in {} objects; kernel judged {}; same verdict {}/{} ({}); \
             kbpf accepts/kernel rejects {}; kbpf rejects/kernel accepts {}; same error line \
             {}/{} both-reject ({}); expectations met (priv, {} tests): kernel {}, kbpf {}, kbpf where the \
             kernel meets them {}/{}",
            t.programs,
            self.per_file().len(),
            t.compared,
            t.same_verdict,
            t.compared,
            pct(t.same_verdict, t.compared),
            t.unsound,
            t.too_strict,
            t.same_error_line,
            t.both_reject,
            pct(t.same_error_line, t.both_reject),
            t.priv_tests,
            t.kernel_met,
            t.kbpf_met,
            t.kbpf_met_where_kernel_met,
            t.kernel_met,
        )
    }

    /// Every row as a JSON line (for analysis: `results.jsonl` next to the objects).
    pub fn jsonl(&self) -> String {
        let mut out = String::new();
        for r in &self.rows {
            let exp = |e: Option<Expectation>| match e {
                None => serde_json::Value::Null,
                Some(e) => serde_json::Value::String(format!("{e:?}")),
            };
            let v = serde_json::json!({
                "file": r.file, "name": r.name, "section": r.section,
                "spec_error": r.spec.as_ref().err(),
                "expect_failure": r.spec.as_ref().ok().map(|s| s.privileged.expect_failure),
                "log_level": r.spec.as_ref().ok().map(|s| s.log_level),
                "prog_flags": r.spec.as_ref().ok().map(|s| s.prog_flags),
                "kernel": {
                    "verdict": format!("{:?}", r.kernel_verdict()), "errno": r.kernel.errno,
                    "stage": r.kernel.stage, "error_line": r.kernel.error_line,
                    "verified_insns": r.kernel.verified_insns, "verify_us": r.kernel.verify_us,
                    "libbpf_log": r.kernel.libbpf_log,
                    "retval": r.kernel.retval, "run_errno": r.kernel.run_errno,
                    "log": r.kernel.log,
                },
                "kbpf": {
                    "accepted": r.kbpf.accepted, "errno": r.kbpf.errno,
                    "message": r.kbpf.message, "insns": r.kbpf.insns, "log": r.kbpf.log,
                    "duration_us": r.kbpf.duration.as_micros() as u64,
                    "error_line_from_log": error_line(&r.kbpf.log),
                    "retval": r.kbpf.retval.as_ref().map(|v| match v {
                        Ok(v) => serde_json::json!(v),
                        Err(e) => serde_json::json!(e),
                    }),
                },
                "same_verdict": r.same_verdict(), "unsound": r.unsound(),
                "same_error_line": r.same_error_line(),
                "kernel_expectation": exp(r.kernel_expectation()),
                "kbpf_expectation": exp(r.kbpf_expectation()),
                "gap_cause": r.expectation_gap().then(|| gaps::cause(r)),
            });
            out.push_str(&v.to_string());
            out.push('\n');
        }
        out
    }

    /// The report (`docs/selftests.md`).
    pub fn markdown(&self) -> String {
        let t = self.totals();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# The kernel's verifier selftests on kbpf\n\n\
             Generated by `crates/selftests/tests/kernel_selftests.rs`; do not edit by hand:\n\n\
             ```sh\nKBPF_SELFTESTS_REPORT=$PWD/docs/selftests.md cargo test -p kbpf-selftests \
             --test kernel_selftests -- --nocapture\n```\n\n\
             Source: Linux 6.12 `tools/testing/selftests/bpf/progs/verifier_*.c` from the \
             `linux-source-6.12` package, built by `scripts/selftests.sh` (clang-19, \
             `-O2 --target=bpf -mcpu=v3`, the Makefile's flags and include paths, vmlinux.h of \
             the running kernel). Kernel: the running `{}`, through `kload` \
             (scripts/selftests/kload.c on the tree's libbpf): each program loaded alone with \
             the selftests' load conditions (`BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS` \
             and the test's `__flag`s, its `__log_level` (at least 1), its object's \
             `__auxiliary` programs, no `CAP_SYS_ADMIN`). kbpf: `kbpf_run::verify_each` under \
             the host kernel profile (no program flags: kbpf has none), at log level 2 where \
             the test asks for it. Expectations: the programs' BTF decl tags read as \
             test_loader.c reads them; verdict, `__msg`s in order, `__retval` through one test \
             run (64 zero bytes in). The tests were written for 6.12; the kernel that judges \
             here is newer, so it does not meet all of them either.\n",
            self.kernel_release
        );
        let _ = writeln!(s, "## Totals\n");
        let _ = writeln!(s, "| | count | of | % |\n|---|---:|---:|---:|");
        let rows: &[(&str, usize, usize)] = &[
            ("programs", t.programs, t.programs),
            (
                "kernel could not judge here (EPERM before the verifier)",
                t.kernel_unavailable,
                t.programs,
            ),
            ("compared (the kernel judged)", t.compared, t.programs),
            ("**same verdict**", t.same_verdict, t.compared),
            (
                "**same instructions processed** (both accept; veristat's `total_insns` = the kernel's `verified_insns`)",
                t.same_insns,
                t.both_accept,
            ),
            (
                "**kbpf accepts, kernel rejects (soundness)**",
                t.unsound,
                t.compared,
            ),
            ("kbpf rejects, kernel accepts", t.too_strict, t.compared),
            ("both reject", t.both_reject, t.compared),
            (
                "**same error line** (exact; kbpf's message = the kernel's last line before `processed`)",
                t.same_error_line,
                t.both_reject,
            ),
            (
                "same error line modulo register numbers",
                t.same_error_line_modulo_regs,
                t.both_reject,
            ),
            (
                "kbpf's message is a line of the kernel's log",
                t.kbpf_message_in_kernel_log,
                t.both_reject,
            ),
            (
                "kbpf could not verify (object, map type or program type unsupported)",
                t.kbpf_unsupported,
                t.programs,
            ),
            (
                "same verdict where kbpf's verifier ran",
                t.same_verdict_verified,
                t.compared_verified,
            ),
            (
                "same error line where kbpf's verifier rejected",
                t.same_error_line_verified,
                t.both_reject_verified,
            ),
            (
                "privileged tests (x86-64, not auxiliary)",
                t.priv_tests,
                t.priv_tests,
            ),
            (
                "expectations met by the kernel (verdict, `__msg`s, `__retval`)",
                t.kernel_met,
                t.priv_tests_kernel,
            ),
            (
                "expectations met by kbpf (verdict, `__msg`s, `__retval`)",
                t.kbpf_met,
                t.priv_tests,
            ),
            (
                "**expectations met by kbpf where the kernel meets them**",
                t.kbpf_met_where_kernel_met,
                t.kernel_met,
            ),
            (
                "privileged tests with a `__retval` run",
                t.retval_tests,
                t.priv_tests,
            ),
            (
                "`__retval` right on the kernel",
                t.kernel_retval_ok,
                t.retval_tests,
            ),
            ("`__retval` right on kbpf", t.kbpf_retval_ok, t.retval_tests),
            (
                "tests with an unprivileged mode (not applicable yet)",
                t.unpriv_tests,
                t.programs,
            ),
            (
                "privileged tests with `__xlated`/`__jited` (not checked)",
                t.disasm_tests,
                t.priv_tests,
            ),
            (
                "programs with `__flag`s (the kernel gets them, kbpf has no flags)",
                t.flagged,
                t.programs,
            ),
            (
                "of those, a different verdict",
                t.flagged_mismatch,
                t.flagged,
            ),
        ];
        for (what, n, of) in rows {
            let _ = writeln!(s, "| {what} | {n} | {of} | {} |", pct(*n, *of));
        }
        let _ = writeln!(
            s,
            "\nKernel expectations are counted over the {} privileged tests the kernel judged \
             here; not met: {} (wrong verdict on the running kernel: {}). kbpf: not met {} \
             (wrong verdict: {}).\n",
            t.priv_tests_kernel,
            t.priv_tests_kernel - t.kernel_met,
            t.kernel_wrong_verdict,
            t.priv_tests - t.kbpf_met,
            t.kbpf_wrong_verdict
        );
        let _ = writeln!(
            s,
            "## Verification time\n\nOver the {} programs both verifiers judged (kbpf's verifier \
             ran; the kernel's `verification time` line of `BPF_LOG_STATS` known): the kernel's \
             verifier {:.1} ms in total, kbpf's verifier and rewrite {:.1} ms ({}; kbpf {} \
             build).\n",
            t.timed,
            t.kernel_us as f64 / 1000.0,
            t.kbpf_us as f64 / 1000.0,
            if t.kernel_us > 0 {
                format!(
                    "{:.2}× the kernel's time",
                    t.kbpf_us as f64 / t.kernel_us as f64
                )
            } else {
                "no kernel time".to_owned()
            },
            if cfg!(debug_assertions) {
                "in a debug"
            } else {
                "in a release"
            }
        );

        let _ = writeln!(s, "## Build\n");
        let built = self
            .artifacts
            .sources
            .iter()
            .filter(|x| x.status == BuildStatus::Ok)
            .count();
        let _ = writeln!(
            s,
            "{} sources, {} compiled as the Makefile does (`-Werror`).",
            self.artifacts.sources.len(),
            built
        );
        for src in &self.artifacts.sources {
            match &src.status {
                BuildStatus::Ok => {}
                BuildStatus::Warn(e) => {
                    let _ = writeln!(
                        s,
                        "- `{}`: compiled only without `-Werror` (the running kernel's \
                         vmlinux.h differs from 6.12's): `{e}`",
                        src.name
                    );
                }
                BuildStatus::Fail(e) => {
                    let _ = writeln!(s, "- `{}`: does not compile: `{e}`", src.name);
                }
            }
        }
        for (f, e) in &self.errors {
            let _ = writeln!(s, "- `{f}`: not measured: {e}");
        }
        let mut no_btf: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.rows {
            if r.kernel.libbpf_log.contains("BTF is optional, ignoring") {
                *no_btf.entry(r.file.as_str()).or_default() += 1;
            }
        }
        for (f, n) in no_btf {
            let _ = writeln!(
                s,
                "- `{f}`: the kernel refused the object's BTF (clang-19 leaves the parameters \
                 of `__naked` functions unnamed: `Invalid arg#1`), so libbpf loaded its {n} \
                 programs without BTF (no func/line info); the verifier still judged them"
            );
        }

        let _ = writeln!(s, "\n## Per file\n");
        let _ = writeln!(
            s,
            "Columns: programs; the kernel could not judge (n/a); same verdict of those \
             compared; kbpf accepts and the kernel rejects (soundness); kbpf rejects and the \
             kernel accepts; kbpf could not verify (unsupported); same error line of both-reject; \
             privileged tests; expectations met by the kernel (of the tests it judged) and by \
             kbpf; met by kbpf where the kernel meets them; tests with an unprivileged mode \
             (not applicable).\n"
        );
        let _ = writeln!(
            s,
            "| file | progs | n/a | same verdict | kbpf acc. / kernel rej. | kbpf rej. / \
             kernel acc. | kbpf unsupported | same error line | priv tests | met: kernel | \
             met: kbpf | kbpf where kernel | unpriv |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let line = |name: &str, c: &Counts| {
            format!(
                "| {name} | {} | {} | {}/{} ({}) | {} | {} | {} | {}/{} | {} | {}/{} | {} | {}/{} | {} |",
                c.programs,
                c.kernel_unavailable,
                c.same_verdict,
                c.compared,
                pct(c.same_verdict, c.compared),
                c.unsound,
                c.too_strict,
                c.kbpf_unsupported,
                c.same_error_line,
                c.both_reject,
                c.priv_tests,
                c.kernel_met,
                c.priv_tests_kernel,
                c.kbpf_met,
                c.kbpf_met_where_kernel_met,
                c.kernel_met,
                c.unpriv_tests
            )
        };
        for (file, c) in self.per_file() {
            let _ = writeln!(s, "{}", line(&file, &c));
        }
        let _ = writeln!(s, "{}", line("**total**", &t));

        let _ = writeln!(
            s,
            "\n## Soundness mismatches (kbpf accepts, kernel rejects)\n"
        );
        let mut classes: BTreeMap<&str, Vec<&ProgramRow>> = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r.unsound()) {
            classes.entry(r.soundness_class()).or_default().push(r);
        }
        let mut classes: Vec<_> = classes.into_iter().collect();
        classes.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        if classes.is_empty() {
            let _ = writeln!(s, "None.\n");
        }
        for (class, rows) in &classes {
            let _ = writeln!(s, "### {class} ({})\n", rows.len());
            for r in rows {
                let _ = writeln!(
                    s,
                    "- `{}` — kernel: `{}`",
                    r.key(),
                    r.kernel.error_line.replace('`', "'")
                );
            }
            let _ = writeln!(s);
        }

        let _ = writeln!(
            s,
            "## Where soundness mismatches may hide\n\nBoth reject, but kbpf for another \
             reason than the kernel (kbpf's message is none of the kernel's log lines): once \
             kbpf gets past its own reason it must still find the kernel's. By the kernel's \
             reason, split by kbpf's: a missing feature (object, map type or program type \
             unsupported, unknown helper) or another verifier check.\n"
        );
        let mut masked: BTreeMap<&str, (Vec<&ProgramRow>, Vec<&ProgramRow>)> = BTreeMap::new();
        for r in self.rows.iter().filter(|r| r.masked()) {
            let e = masked.entry(r.soundness_class()).or_default();
            if r.kbpf_missing_feature() {
                e.0.push(r);
            } else {
                e.1.push(r);
            }
        }
        let mut masked: Vec<_> = masked.into_iter().collect();
        masked.sort_by_key(|(_, (a, b))| std::cmp::Reverse(a.len() + b.len()));
        let _ = writeln!(
            s,
            "| the kernel's reason | kbpf: missing feature | kbpf: another check | e.g. (kernel / kbpf) |\n|---|---:|---:|---|"
        );
        for (class, (a, b)) in &masked {
            let ex = a.first().or(b.first()).unwrap();
            let _ = writeln!(
                s,
                "| {class} | {} | {} | `{}`: `{}` / `{}` |",
                a.len(),
                b.len(),
                ex.key(),
                md_cell(&ex.kernel.error_line),
                md_cell(&reason_class(&ex.kbpf.message, &ex.name))
            );
        }
        let _ = writeln!(s);

        let group = |rows: &mut dyn Iterator<Item = (String, String)>| {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in rows {
                m.entry(k).or_default().push(v);
            }
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
            v
        };
        let _ = writeln!(s, "## kbpf rejects, kernel accepts: kbpf's reasons\n");
        let reasons = group(
            &mut self
                .rows
                .iter()
                .filter(|r| r.too_strict())
                .map(|r| (reason_class(&r.kbpf.message, &r.name), r.key())),
        );
        let _ = writeln!(
            s,
            "| kbpf's message (numbers as N) | programs | e.g. |\n|---|---:|---|"
        );
        for (msg, v) in &reasons {
            let _ = writeln!(s, "| `{}` | {} | `{}` |", md_cell(msg), v.len(), v[0]);
        }

        let _ = writeln!(
            s,
            "\n## Both reject, different error lines\n\nThe kernel's line, kbpf's message \
             (numbers as N). Where kbpf stops before its verifier (an unsupported object, map \
             or program type) a soundness mismatch may hide behind the rejection.\n"
        );
        let pairs = group(
            &mut self
                .rows
                .iter()
                .filter(|r| r.both_reject() && !r.same_error_line())
                .map(|r| {
                    (
                        format!(
                            "`{}` | `{}`",
                            md_cell(&reason_class(&r.kernel.error_line, &r.name)),
                            md_cell(&reason_class(&r.kbpf.message, &r.name))
                        ),
                        r.key(),
                    )
                }),
        );
        let _ = writeln!(s, "| kernel | kbpf | programs | e.g. |\n|---|---|---:|---|");
        for (pair, v) in &pairs {
            let _ = writeln!(s, "| {pair} | {} | `{}` |", v.len(), v[0]);
        }

        s.push_str(&gaps::markdown(self.rows.iter()));

        let _ = writeln!(s, "## Expectations kbpf does not meet\n");
        let missed = group(&mut self.rows.iter().filter_map(|r| {
            let e = r.kbpf_expectation()?;
            let k = match e {
                Expectation::Met | Expectation::Unavailable => return None,
                Expectation::WrongVerdict if r.kbpf.accepted => {
                    "accepted, `__failure` expected".to_owned()
                }
                Expectation::WrongVerdict if !r.kbpf_verified() => {
                    "rejected before the verifier (unsupported)".to_owned()
                }
                Expectation::WrongVerdict => {
                    "rejected by the verifier, `__success` expected".to_owned()
                }
                Expectation::MissingMsg(_) if r.kernel_expectation() == Some(Expectation::Met) => {
                    "a `__msg` the kernel prints is missing".to_owned()
                }
                Expectation::MissingMsg(_)
                    if r.kernel_expectation() == Some(Expectation::Unavailable) =>
                {
                    "a `__msg` is missing (the kernel could not judge here)".to_owned()
                }
                Expectation::MissingMsg(_) => {
                    "a `__msg` is missing (the kernel misses it too)".to_owned()
                }
                Expectation::WrongRetval(_) => "`__retval` differs or the run failed".to_owned(),
            };
            Some((k, r.key()))
        }));
        let _ = writeln!(s, "| why | tests | e.g. |\n|---|---:|---|");
        for (why, v) in &missed {
            let _ = writeln!(s, "| {why} | {} | `{}` |", v.len(), v[0]);
        }

        let _ = writeln!(s, "\n## Kernel refusals this machine imposes\n");
        let na = group(&mut self.rows.iter().filter(|r| !r.compared()).map(|r| {
            let why = if r.kernel.error_line.is_empty() {
                "EPERM from the verifier without a message (log: processed 0 insns)".into()
            } else {
                reason_class(&r.kernel.error_line, &r.name)
            };
            (why, r.key())
        }));
        for (why, v) in na {
            let _ = writeln!(s, "- {}: `{}` (e.g. `{}`)", v.len(), md_cell(&why), v[0]);
        }
        let _ = writeln!(
            s,
            "\nTimes of the run that wrote this: kernel side {:.1} s (kload, 2 at a time), kbpf \
             side {:.1} s (debug build).",
            self.kernel_time.as_secs_f64(),
            self.kbpf_time.as_secs_f64()
        );
        s
    }
}

/// A message for grouping: the program's name as `P`, numbers as `N` (but not the numbers
/// of `program type N`/`map type N`, which say which type), first line, 140 characters.
fn reason_class(msg: &str, name: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re =
        RE.get_or_init(|| regex::Regex::new(r"(type |#)?(-?\b(?:0x[0-9a-f]+|[0-9]+)\b)").unwrap());
    let msg = msg.lines().next().unwrap_or_default();
    let msg = if name.is_empty() {
        msg.to_owned()
    } else {
        msg.replace(&format!("'{name}'"), "'P'")
            .replace(&format!("program {name}:"), "program P:")
    };
    let short: String = msg.chars().take(140).collect();
    re.replace_all(&short, |c: &regex::Captures<'_>| match c.get(1) {
        Some(p) => format!("{}{}", p.as_str(), &c[2]),
        None => "N".to_owned(),
    })
    .into_owned()
}

pub(crate) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}

pub(crate) fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / of as f64)
    }
}

/// The kload plan of an object: every program, each with its test's log level, flags and
/// `__btf_path` (relative to the objects, as test_loader runs where they are) and the
/// object's privileged auxiliary programs.
fn kernel_plan(p: &ObjectPlan, obj_dir: &Path) -> Vec<PlanEntry> {
    let aux: Vec<String> = p
        .programs
        .iter()
        .zip(&p.specs)
        .filter(|(_, s)| {
            s.as_ref()
                .is_ok_and(|s| s.auxiliary && s.mode_mask & spec::PRIV != 0)
        })
        .map(|(p, _)| p.name.clone())
        .collect();
    p.programs
        .iter()
        .zip(&p.specs)
        .map(|(prog, s)| {
            let (log_level, prog_flags) = match s {
                Ok(s) => (s.effective_log_level(), s.prog_flags),
                Err(_) => (1, spec::TESTING_PROG_FLAGS),
            };
            PlanEntry {
                name: prog.name.clone(),
                log_level,
                prog_flags,
                auxiliary: aux.iter().filter(|a| **a != prog.name).cloned().collect(),
                run: s.as_ref().is_ok_and(|s| s.is_priv_test() && s.should_run()),
                btf_path: s
                    .as_ref()
                    .ok()
                    .and_then(|s| s.btf_path.as_ref())
                    .map(|b| obj_dir.join(b)),
            }
        })
        .collect()
}

/// The map `prog_tests/verifier.c` fills before its test runs (`init_test_val_map`).
fn init_map(file: &str) -> Option<&'static str> {
    match file {
        "verifier_array_access" => Some("map_array_ro"),
        "verifier_value_ptr_arith" => Some("map_array_48b"),
        _ => None,
    }
}

/// The selftests' `struct test_val` as `init_test_val_map` writes it: `index` 28,
/// `foo[6]` 0xabcdef12.
fn test_val() -> [u8; 48] {
    let mut v = [0u8; 48];
    v[..4].copy_from_slice(&28u32.to_ne_bytes());
    v[4 + 6 * 4..4 + 7 * 4].copy_from_slice(&0xabcdef12u32.to_ne_bytes());
    v
}

/// The BTF of the object at `path` (a `__btf_path` target).
fn core_target(path: &Path) -> Result<std::sync::Arc<kbpf_btf::Btf>, String> {
    elf::read(path)?
        .btf
        .map(std::sync::Arc::new)
        .ok_or_else(|| format!("{}: no BTF", path.display()))
}

/// One program's verdict on kbpf's side (the fields of `kbpf_run::ProgVerification` the
/// suite reads).
struct Each {
    name: String,
    result: Result<(), String>,
    errno: i32,
    log: String,
    insns: usize,
    duration: Duration,
}

impl From<kbpf_run::ProgVerification> for Each {
    fn from(v: kbpf_run::ProgVerification) -> Each {
        Each {
            name: v.name,
            result: v.result,
            errno: v.errno,
            log: v.log,
            insns: v.stats.insn_processed,
            duration: v.duration,
        }
    }
}

/// kbpf's test run of one program, as test_loader's `do_prog_test_run`: the object loaded
/// afresh, the program loaded, 64 zero bytes in, once, on the interpreter.
fn kbpf_test_run(
    p: &ObjectPlan,
    name: &str,
    opts: &kbpf_run::program::LoadOptions,
) -> Result<i32, String> {
    let (path, file) = (&p.path, &p.file);
    let obj = kbpf_object::BpfObject::open(path).map_err(|e| e.to_string())?;
    let registry = kbpf_maps::Registry::new();
    let lopts = kbpf_loader::LoadOptions {
        maps_profile: opts.profile.maps,
        core_target: p.core_btf.as_deref().map(core_target).transpose()?,
        ..Default::default()
    };
    let loaded = kbpf_loader::load_object(&obj, &registry, &lopts).map_err(|e| e.to_string())?;
    let env = kbpf_run::maps_env(&loaded);
    let lp = loaded
        .program(name)
        .ok_or_else(|| format!("no program {name}"))?;
    let prog = std::sync::Arc::new(
        kbpf_run::Program::load(lp, &env, opts, &kbpf_run::funcs_btf(&obj, lp))
            .map_err(|e| e.to_string())?,
    );
    // PROG_ARRAY initial slots, as libbpf fills them with the loaded (auxiliary) programs.
    for (i, slot) in loaded.pending_prog_slots.iter().enumerate() {
        let target = if slot.program == name {
            prog.clone()
        } else {
            let Some(lp) = loaded.program(&slot.program) else {
                continue;
            };
            match kbpf_run::Program::load(lp, &env, opts, &kbpf_run::funcs_btf(&obj, lp)) {
                Ok(p) => std::sync::Arc::new(p),
                Err(_) => continue,
            }
        };
        if let Some(m) = loaded.map(&slot.map) {
            m.map
                .update_prog(
                    &slot.slot.to_ne_bytes(),
                    kbpf_run::prog_ref(&target, 1000 + i as u32),
                    0,
                )
                .map_err(|e| format!("{}[{}]: {e}", slot.map, slot.slot))?;
        }
    }
    if let Some(m) = init_map(file).and_then(|m| loaded.map(m)) {
        m.map
            .update_elem(&0u32.to_ne_bytes(), &test_val(), 0)
            .map_err(|e| format!("init {}: {e}", m.name))?;
    }
    let out = prog
        .test_run(&kbpf_run::TestRunInput {
            data_in: &[0u8; spec::TEST_DATA_LEN as usize],
            ctx_in: None,
            repeat: 1,
            engine: kbpf_run::Engine::Interpreter,
        })
        .map_err(|e| format!("test run: {e}"))?;
    Ok(out.retval as i32)
}

/// kbpf's side of one object: `verify_each` once per distinct (log level, `__flag`s) the
/// object's tests ask for, each program taken from the run with its own; then the test runs
/// of accepted `__retval` tests.
fn kbpf_side(p: &ObjectPlan, opts: &kbpf_run::program::LoadOptions) -> HashMap<String, KbpfResult> {
    // What each program's test asks for: log level 1 or 2, and its program flags.
    let want: HashMap<&str, (u32, u32)> = p
        .programs
        .iter()
        .zip(&p.specs)
        .map(|(prog, s)| {
            let (level, flags) = match s {
                // The kernel's level bits: level 2, else 1; with BPF_LOG_STATS.
                Ok(s) => (
                    (if s.log_level & 3 >= 2 { 2 } else { 1 }) | (s.log_level as u32 & 4),
                    s.prog_flags,
                ),
                Err(_) => (1, spec::TESTING_PROG_FLAGS),
            };
            (prog.name.as_str(), (level, flags))
        })
        .collect();
    let mut runs: Vec<(u32, u32)> = want.values().copied().collect();
    runs.sort_unstable();
    runs.dedup();
    if runs.is_empty() {
        runs.push((1, spec::TESTING_PROG_FLAGS));
    }
    let core_target = match &p.core_btf {
        Some(btf) => match core_target(btf) {
            Ok(t) => Some(t),
            Err(e) => {
                return p
                    .programs
                    .iter()
                    .map(|prog| {
                        let r = KbpfResult {
                            message: format!("open: {e}"),
                            errno: 22,
                            log_level: 1,
                            ..Default::default()
                        };
                        (prog.name.clone(), r)
                    })
                    .collect();
            }
        },
        None => None,
    };
    let mut out = HashMap::new();
    for (level, flags) in runs {
        let o = kbpf_run::program::LoadOptions {
            log_level: level,
            prog_flags: flags,
            core_target: core_target.clone(),
            // The kernel side runs verifier_mtu without CAP_PERFMON too.
            perfmon: p.file != "verifier_mtu",
            ..opts.clone()
        };
        match kbpf_run::verify_each(&p.path, &o) {
            Ok(v) => {
                for pv in v {
                    if want.get(pv.name.as_str()) != Some(&(level, flags)) {
                        continue;
                    }
                    let pv = Each::from(pv);
                    let (accepted, message) = match &pv.result {
                        Ok(()) => (true, String::new()),
                        Err(m) => (false, m.clone()),
                    };
                    out.insert(
                        pv.name.clone(),
                        KbpfResult {
                            accepted,
                            message,
                            errno: pv.errno,
                            log: pv.log,
                            insns: pv.insns,
                            log_level: level,
                            duration: pv.duration,
                            retval: None,
                        },
                    );
                }
            }
            Err(e) => {
                for prog in &p.programs {
                    out.entry(prog.name.clone()).or_insert_with(|| KbpfResult {
                        message: format!("open: {e}"),
                        errno: 22,
                        log_level: level,
                        ..Default::default()
                    });
                }
            }
        }
    }
    for (prog, s) in p.programs.iter().zip(&p.specs) {
        let Ok(s) = s else { continue };
        if !(s.is_priv_test() && s.should_run()) {
            continue;
        }
        if let Some(r) = out.get_mut(&prog.name)
            && r.accepted
        {
            r.retval = Some(kbpf_test_run(p, &prog.name, opts));
        }
    }
    out
}

/// Reads a ratchet list (`file/program` per line, `#` comments).
pub fn read_list(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}
