//! `prog run`: `BPF_PROG_TEST_RUN` with bpftool's arguments and output.

use super::*;

// ---------------------------------------------------------------------------------------
// run

/// The parsed `prog run` arguments after `PROG`.
#[derive(Debug, Default, PartialEq)]
pub struct RunArgs {
    /// `data_in FILE` (`-` is stdin).
    pub data_in: Option<String>,
    /// `data_out FILE` (`-` is stdout).
    pub data_out: Option<String>,
    /// `data_size_out L`.
    pub data_size_out: Option<u32>,
    /// `ctx_in FILE`.
    pub ctx_in: Option<String>,
    /// `ctx_out FILE`.
    pub ctx_out: Option<String>,
    /// `ctx_size_out M`.
    pub ctx_size_out: Option<u32>,
    /// `repeat N`.
    pub repeat: u32,
    /// `--engine interp|jit` (kbpf's).
    pub engine: Engine,
    /// `pcap_in FILE` (kbpf's): every packet of a capture through the program.
    pub pcap_in: Option<String>,
    /// `pcap_out FILE` (with `pcap_in`): the packets the program passes on.
    pub pcap_out: Option<String>,
}

/// Parses the `prog run` words after `PROG` (bpftool's keywords, any order, and kbpf's
/// `--engine` / `engine` option).
pub fn parse_run_args(w: &mut Words<'_>) -> Result<RunArgs, Reply> {
    let mut a = RunArgs {
        // 0 = one run for every type the kernel repeats (it treats 0 as 1); unlike bpftool
        // 7.1, which always sends 1, this lets raw tracepoint programs run at all (their
        // test run refuses any repeat count).
        repeat: 0,
        // The JIT where there is one (x86-64); elsewhere the interpreter.
        engine: if cfg!(target_arch = "x86_64") {
            Engine::Jit
        } else {
            Engine::Interpreter
        },
        ..RunArgs::default()
    };
    while let Some(word) = w.peek() {
        let need = |w: &mut Words<'_>| -> Result<String, Reply> {
            w.next();
            w.require(1).map_err(Reply::from)?;
            Ok(w.next().unwrap_or_default().to_string())
        };
        if word == "--engine" || word == "engine" {
            let v = need(w)?;
            a.engine = match v.as_str() {
                "interp" | "interpreter" => Engine::Interpreter,
                "jit" => Engine::Jit,
                _ => {
                    return Err(Reply::err(
                        format!("unknown engine '{v}' (interp or jit)"),
                        -1,
                    ));
                }
            };
        } else if let Some(e) = word.strip_prefix("--engine=") {
            w.next();
            a.engine = match e {
                "interp" | "interpreter" => Engine::Interpreter,
                "jit" => Engine::Jit,
                _ => {
                    return Err(Reply::err(
                        format!("unknown engine '{e}' (interp or jit)"),
                        -1,
                    ));
                }
            };
        } else if is_prefix(word, "data_in") {
            a.data_in = Some(need(w)?);
        } else if is_prefix(word, "data_out") {
            a.data_out = Some(need(w)?);
        } else if is_prefix(word, "data_size_out") {
            let v = need(w)?;
            a.data_size_out = Some(parse_u32(&v, "output data size")?);
        } else if is_prefix(word, "ctx_in") {
            a.ctx_in = Some(need(w)?);
        } else if is_prefix(word, "ctx_out") {
            a.ctx_out = Some(need(w)?);
        } else if is_prefix(word, "ctx_size_out") {
            let v = need(w)?;
            a.ctx_size_out = Some(parse_u32(&v, "output context size")?);
        } else if is_prefix(word, "repeat") {
            let v = need(w)?;
            a.repeat = parse_u32(&v, "repeat number")?;
        } else if word == "pcap_in" {
            a.pcap_in = Some(need(w)?);
        } else if word == "pcap_out" {
            a.pcap_out = Some(need(w)?);
        } else {
            return Err(Reply::err(
                format!(
                    "expected no more arguments, 'data_in', 'data_out', 'data_size_out', 'ctx_in', 'ctx_out', 'ctx_size_out' or 'repeat', got: '{word}'?"
                ),
                -1,
            ));
        }
    }
    if a.pcap_out.is_some() && a.pcap_in.is_none() {
        return Err(Reply::err("pcap_out is set but pcap_in is not", -1));
    }
    if a.pcap_in.is_some() && (a.data_in.is_some() || a.ctx_in.is_some() || a.repeat > 1) {
        return Err(Reply::err(
            "pcap_in runs each packet once: no data_in, ctx_in or repeat with it",
            -1,
        ));
    }
    Ok(a)
}

fn parse_u32(v: &str, what: &str) -> Result<u32, Reply> {
    strtoul(v, 0)
        .filter(|n| *n <= u32::MAX as u64)
        .map(|n| n as u32)
        .ok_or_else(|| Reply::err(format!("can't parse {v} as {what}"), -1))
}

fn read_input(s: &mut Session, f: &str) -> Result<Vec<u8>, Reply> {
    if f == "-" {
        return s
            .read_stdin()
            .map_err(|e| Reply::err(format!("failed to read stdin: {}", strerror(&e)), -1));
    }
    std::fs::read(f).map_err(|e| Reply::err(format!("failed to open {f}: {}", strerror(&e)), -1))
}

/// bpftool's hex dump of `data_out -`: `%07x` offset, a tab, 16 bytes in pairs, ` | ` and
/// the printable characters with a blank after the eighth.
pub fn hex_dump(b: &[u8]) -> String {
    let mut o = String::new();
    for (n, chunk) in b.chunks(16).enumerate() {
        let mut hex = String::new();
        for (i, x) in chunk.iter().enumerate() {
            hex.push_str(&format!("{x:02x}"));
            if i % 2 == 1 {
                hex.push(' ');
            }
        }
        let mut asc = String::new();
        for (i, x) in chunk.iter().enumerate() {
            asc.push(if (0x20..0x7f).contains(x) {
                *x as char
            } else {
                '.'
            });
            if i == 7 {
                asc.push(' ');
            }
        }
        o.push_str(&format!("{:07x}\t{hex:<40}| {asc}\n", n * 16));
    }
    o
}

/// Whether a run of `prog` asks the host's network stack anything (`bpf_fib_lookup`'s
/// routes and neighbours): only then does the namespace it runs in matter.
fn asks_host_network(prog: &kbpf_run::Program) -> bool {
    prog.insns.iter().any(|i| {
        i.code == kbpf_isa::insn::BPF_JMP | kbpf_isa::insn::BPF_CALL
            && i.src() == 0
            && i.imm == kbpf_uapi::bpf::BPF_FUNC_FIB_LOOKUP
    })
}

/// Runs `f` in the client's network namespace, as bpftool's test run happens in bpftool's
/// own: what the program asks the host (`bpf_fib_lookup`'s routes and neighbours) is the
/// client's. The daemon's thread stays where it is; a scoped thread enters the client's
/// namespace when it differs. Without a daemon, or for a program that asks the host
/// nothing, the run is where the caller is (so a client the daemon cannot follow into its
/// namespace can still run those).
fn in_client_netns<T: Send>(
    s: &Session,
    prog: &kbpf_run::Program,
    f: impl FnOnce() -> T + Send,
) -> Result<T, Reply> {
    let Some(ctx) = &s.net else {
        return Ok(f());
    };
    if !asks_host_network(prog) {
        return Ok(f());
    }
    let client = ctx.client_netns()?;
    if kbpf_net::NetNs::current().is_ok_and(|here| here.inode() == client.inode()) {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| client.enter().map(|()| f()))
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
    .map_err(|e| {
        Reply::err(
            format!("entering the client's network namespace: {e}"),
            -e.raw_os_error().unwrap_or(libc::EIO),
        )
    })
}

pub(super) fn run(s: &mut Session, w: &mut Words<'_>) -> Reply {
    if let Err(e) = w.require(4) {
        return e.into();
    }
    let id = match parse_prog(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let a = match parse_run_args(w) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(input) = &a.pcap_in {
        let prog = s.live_progs[&id].program.clone();
        let prog_type = s.live_progs[&id].prog_type;
        let r = in_client_netns(s, &prog, || {
            super::pcap::run_capture(
                prog_type,
                Path::new(input),
                a.pcap_out.as_deref().map(Path::new),
                |batch| {
                    let mut out = Vec::with_capacity(batch.len());
                    kbpf_run::run_packets(
                        &prog,
                        a.engine,
                        batch.iter().map(|p| p.as_slice()),
                        true,
                        |_, r| out.push((r.retval, r.data_out)),
                    )
                    .map_err(|e| {
                        Reply::err(
                            format!("failed to run program: {}", errno_text(e.errno())),
                            -e.errno(),
                        )
                    })?;
                    Ok(out)
                },
            )
        })
        .and_then(|r| r);
        s.touch_contents();
        return match r {
            Ok(summary) => super::pcap::reply(prog_type, &summary),
            Err(r) => r,
        };
    }
    if a.data_in.is_none() && a.ctx_in.is_none() {
        return Reply::err("bpftool prog run needs data_in or ctx_in", -1);
    }
    let data = match &a.data_in {
        Some(f) => match read_input(s, f) {
            Ok(d) => d,
            Err(r) => return r,
        },
        None => Vec::new(),
    };
    let ctx = match &a.ctx_in {
        Some(f) => match read_input(s, f) {
            Ok(c) => Some(c),
            Err(r) => return r,
        },
        None => None,
    };
    if a.data_out.is_none() && a.data_size_out.is_some() {
        return Reply::err("data_size_out is set but data_out is not", -1);
    }
    if a.ctx_out.is_none() && a.ctx_size_out.is_some() {
        return Reply::err("ctx_size_out is set but ctx_out is not", -1);
    }
    let prog = s.live_progs[&id].program.clone();
    let out = in_client_netns(s, &prog, || {
        prog.test_run(&TestRunInput {
            data_in: &data,
            ctx_in: ctx.as_deref(),
            repeat: a.repeat,
            engine: a.engine,
        })
    });
    let out = match out {
        Err(r) => return r,
        Ok(r) => r,
    };
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            let errno = e.errno();
            if s.opts.debug || matches!(e, kbpf_run::TestRunError::Engine(_)) {
                s.note(&format!("kbpf: {e}\n"));
            }
            return Reply::err(
                format!("failed to run program: {}", errno_text(errno)),
                -errno,
            );
        }
    };
    // The kernel copies at most data_size_out bytes (ENOSPC when the packet is longer).
    let cap = a
        .data_size_out
        .map(|n| n as usize)
        .unwrap_or(if a.data_out.is_some() {
            // bpftool's default output buffer.
            usize::MAX
        } else {
            0
        });
    if a.data_out.is_some() && out.data_out.len() > cap {
        return Reply::err("failed to run program: No space left on device", -28);
    }
    let ctx_cap = a.ctx_size_out.map(|n| n as usize).unwrap_or(usize::MAX);
    if let (Some(_), Some(c)) = (&a.ctx_out, &out.ctx_out)
        && c.len() > ctx_cap
    {
        return Reply::err("failed to run program: No space left on device", -28);
    }
    let mut text = String::new();
    let mut fields: Vec<(&str, Json)> = Vec::new();
    let bytes = |b: &[u8]| Json::A(b.iter().map(|x| Json::U(*x as u64)).collect());
    if let Some(f) = &a.data_out {
        if f == "-" {
            text.push_str(&hex_dump(&out.data_out));
            fields.push(("data_out", bytes(&out.data_out)));
        } else if let Err(e) = std::fs::write(f, &out.data_out) {
            return Reply::err(format!("failed to open {f}: {}", strerror(&e)), -1);
        }
    }
    if let (Some(f), Some(c)) = (&a.ctx_out, &out.ctx_out) {
        if f == "-" {
            text.push_str(&hex_dump(c));
            fields.push(("ctx_out", bytes(c)));
        } else if let Err(e) = std::fs::write(f, c) {
            return Reply::err(format!("failed to open {f}: {}", strerror(&e)), -1);
        }
    }
    text.push_str(&format!(
        "Return value: {}, duration{}: {}ns\n",
        out.retval,
        if a.repeat > 1 { " (average)" } else { "" },
        out.duration_ns
    ));
    // kbpf's own lines (the kernel's test run reports neither): where the packet was
    // redirected and the tunnel metadata the program attached.
    if let Some(r) = &out.redirect {
        text.push_str(&format!("Redirect: {r}\n"));
    }
    if let Some(t) = &out.tunnel_key {
        text.push_str(&format!("Tunnel key: {}\n", tunnel_text(t)));
    }
    s.touch_contents();
    fields.push(("retval", Json::U(out.retval as u64)));
    fields.push(("duration", Json::U(out.duration_ns)));
    if let Some(r) = &out.redirect {
        fields.push(("redirect", redirect_json(r)));
    }
    if let Some(t) = &out.tunnel_key {
        fields.push(("tunnel_key", tunnel_json(t)));
    }
    Reply::ok(text, Json::obj(fields))
}

/// A redirect as JSON: `{"kind": …, <the target's fields>, "flags": …}`.
pub(crate) fn redirect_json(r: &kbpf_run::Redirect) -> Json {
    use kbpf_run::RedirectTarget as T;
    let mut f: Vec<(&str, Json)> = Vec::new();
    match r.target {
        T::Ifindex { ifindex } => {
            f.push(("kind", Json::S("ifindex".into())));
            f.push(("ifindex", Json::U(ifindex.into())));
        }
        T::DevMap {
            map_id,
            key,
            ifindex,
        } => {
            f.push(("kind", Json::S("devmap".into())));
            f.push(("map_id", Json::U(map_id.into())));
            f.push(("key", Json::U(key.into())));
            f.push(("ifindex", Json::U(ifindex.into())));
        }
        T::DevMapBroadcast { map_id } => {
            f.push(("kind", Json::S("devmap_broadcast".into())));
            f.push(("map_id", Json::U(map_id.into())));
        }
        T::CpuMap { map_id, cpu } => {
            f.push(("kind", Json::S("cpumap".into())));
            f.push(("map_id", Json::U(map_id.into())));
            f.push(("cpu", Json::U(cpu.into())));
        }
        T::XskMap { map_id, queue } => {
            f.push(("kind", Json::S("xskmap".into())));
            f.push(("map_id", Json::U(map_id.into())));
            f.push(("queue", Json::U(queue.into())));
        }
    }
    f.push(("flags", Json::U(r.flags)));
    Json::obj(f)
}

fn addr_text(words: &[u32; 4], ipv6: bool) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    if ipv6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&bytes);
        std::net::Ipv6Addr::from(a).to_string()
    } else {
        std::net::Ipv4Addr::from([bytes[0], bytes[1], bytes[2], bytes[3]]).to_string()
    }
}

/// `struct bpf_tunnel_key` fields hold addresses in host order (the kernel converts them
/// with `cpu_to_be32`): printed as the addresses they stand for.
fn tunnel_text(t: &kbpf_run::TunnelKey) -> String {
    format!(
        "id {} remote {} local {} tos {} ttl {}{} flags {:#x}",
        t.tunnel_id,
        addr_text(&t.remote, t.ipv6),
        addr_text(&t.local, t.ipv6),
        t.tos,
        t.ttl,
        if t.ipv6 {
            format!(" label {:#x}", t.label)
        } else {
            String::new()
        },
        t.flags
    )
}

fn tunnel_json(t: &kbpf_run::TunnelKey) -> Json {
    Json::obj(vec![
        ("tunnel_id", Json::U(t.tunnel_id.into())),
        ("remote", Json::S(addr_text(&t.remote, t.ipv6))),
        ("local", Json::S(addr_text(&t.local, t.ipv6))),
        ("ipv6", Json::B(t.ipv6)),
        ("tos", Json::U(t.tos.into())),
        ("ttl", Json::U(t.ttl.into())),
        ("label", Json::U(t.label.into())),
        ("flags", Json::U(t.flags)),
    ])
}
