//! `prog dump xlated|jited`: bpftool's text, opcodes, line info, JSON and the `visual` CFG
//! (DOT), with the session's map ids.

use super::*;

// ---------------------------------------------------------------------------------------
// dump

pub(super) fn dump(s: &mut Session, w: &mut Words<'_>) -> Reply {
    let jited = match w.peek() {
        Some(x) if is_prefix(x, "jited") => true,
        Some(x) if is_prefix(x, "xlated") => false,
        Some(x) => return Reply::err(format!("expected 'xlated' or 'jited', got: {x}"), -1),
        None => return usage(s),
    };
    w.next();
    if w.len() < 2 {
        return usage(s);
    }
    let id = match parse_prog(s, w) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut opts = DumpOptions {
        dialect: kbpf_isa::disasm::Dialect::Bpftool71,
        ..Default::default()
    };
    let mut visual = false;
    let mut file = None;
    if let Some(x) = w.peek() {
        if is_prefix(x, "file") {
            w.next();
            match w.next() {
                Some(f) => file = Some(f.to_string()),
                None => {
                    return Reply::err("expected file path", -1);
                }
            }
        } else if is_prefix(x, "opcodes") {
            w.next();
            opts.opcodes = true;
        } else if is_prefix(x, "visual") {
            w.next();
            visual = true;
        } else if is_prefix(x, "linum") {
            w.next();
            opts.linum = true;
        }
    }
    if !w.is_empty() {
        return usage(s);
    }
    let prog = s.live_progs[&id].program.clone();
    if jited {
        return match prog.dump_jited(opts.opcodes) {
            Ok(text) => Reply::ok(text, Json::Null),
            // bpftool's answer for a program the kernel did not JIT.
            Err(_) => Reply::err("no instructions returned", -1),
        };
    }
    if let Some(f) = file {
        let bytes = insns_to_bytes(&dump_insns(s, &prog));
        return match std::fs::write(&f, bytes) {
            Ok(()) => Reply::ok("", Json::Null),
            Err(e) => Reply::err(format!("can't open file {f}: {}", strerror(&e)), -1),
        };
    }
    if visual {
        if s.opts.json {
            return Reply::ok("", Json::Null);
        }
        return Reply::ok(session_ids(s, &dot_graph(&prog)), Json::Null);
    }
    let text = session_ids(s, &prog.dump_xlated(&opts));
    let json = dump_json(s, &prog, &text, opts);
    Reply::ok(text, json)
}

/// The dump's instructions with map ids as the session shows them.
fn dump_insns(s: &Session, prog: &Program) -> Vec<Insn> {
    let mut insns = insns_for_dump(&prog.xlated);
    let mut i = 0;
    while i < insns.len() {
        if insns[i].is_ld_imm64() {
            let src = insns[i].src();
            if (src == BPF_PSEUDO_MAP_FD || src == BPF_PSEUDO_MAP_VALUE)
                && let Some(id) = s.id_of_kid(insns[i].imm as u32)
            {
                insns[i].imm = id as i32;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    insns
}

/// Rewrites kbpf-maps' map ids in dump text (`map[id:K]`, and the `imm` bytes of the
/// `opcodes` line after it) into the session's map ids, which `map show` uses.
fn session_ids(s: &Session, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut patch: Option<u32> = None;
    for line in text.lines() {
        let mut l = line.to_string();
        if let Some(id) = patch.take() {
            let t = l.trim_start();
            let indent = l.len() - t.len();
            let mut bytes: Vec<String> = t.split(' ').map(String::from).collect();
            if bytes.len() >= 8 && bytes.iter().all(|b| b.len() == 2) {
                for (k, b) in id.to_le_bytes().iter().enumerate() {
                    bytes[4 + k] = format!("{b:02x}");
                }
                l = format!("{}{}", &line[..indent], bytes.join(" "));
            }
        }
        if let Some(p) = l.find("map[id:") {
            let start = p + "map[id:".len();
            if let Some(e) = l[start..].find(']')
                && let Some(id) = l[start..start + e]
                    .parse()
                    .ok()
                    .and_then(|k| s.id_of_kid(k))
            {
                l.replace_range(start..start + e, &id.to_string());
                patch = Some(id);
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A numbered instruction line of the dump: `   N: (op) text`.
fn insn_line(l: &str) -> Option<(usize, &str)> {
    let t = l.trim_start();
    let colon = t.find(": (")?;
    let n = t[..colon].parse().ok()?;
    Some((n, &t[colon + 2..]))
}

fn hex_list(b: &[u8]) -> Json {
    Json::A(b.iter().map(|x| Json::s(format!("0x{x:02x}"))).collect())
}

/// `-j prog dump xlated`: one object per instruction with the prototype, source line
/// (and `linum` fields) that precede it, and with `opcodes` the instruction's fields.
fn dump_json(s: &Session, prog: &Program, text: &str, opts: DumpOptions) -> Json {
    let insns = dump_insns(s, prog);
    let mut out = Vec::new();
    let mut proto: Option<String> = None;
    let mut src: Option<String> = None;
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("; ") {
            src = Some(rest.to_string());
            continue;
        }
        if let Some((n, dis)) = insn_line(l) {
            let mut f: Vec<(&str, Json)> = Vec::new();
            if let Some(p) = proto.take() {
                f.push(("proto", Json::s(p)));
            }
            if let Some(sline) = src.take() {
                match (opts.linum, sline.rfind(" [file:")) {
                    (true, Some(i)) => {
                        f.push(("src", Json::s(&sline[..i])));
                        let meta = sline[i + 7..].trim_end_matches(']');
                        let mut parts = meta.split(' ');
                        let file = parts.next().unwrap_or_default();
                        f.push(("file", Json::s(file)));
                        for p in parts {
                            if let Some((k, v)) = p.split_once(':') {
                                let key = if k == "line_num" {
                                    "line_num"
                                } else {
                                    "line_col"
                                };
                                f.push((key, Json::U(v.parse().unwrap_or(0))));
                            }
                        }
                    }
                    _ => f.push(("src", Json::s(sline))),
                }
            }
            f.push(("disasm", Json::s(dis)));
            if opts.opcodes
                && let Some(i) = insns.get(n)
            {
                let b = i.to_bytes();
                let mut imm = b[4..8].to_vec();
                if i.is_ld_imm64()
                    && let Some(next) = insns.get(n + 1)
                {
                    imm.extend_from_slice(&next.to_bytes());
                }
                f.push((
                    "opcodes",
                    Json::obj([
                        ("code", Json::s(format!("0x{:02x}", i.code))),
                        ("src_reg", Json::s(format!("0x{:x}", i.src()))),
                        ("dst_reg", Json::s(format!("0x{:x}", i.dst()))),
                        ("off", hex_list(&b[2..4])),
                        ("imm", hex_list(&imm)),
                    ]),
                ));
            }
            out.push(Json::obj(f));
            continue;
        }
        if let Some(p) = l.strip_suffix(':')
            && !l.starts_with(' ')
        {
            proto = Some(p.to_string());
        }
    }
    Json::A(out)
}

/// The control-flow graph as DOT, laid out as `bpftool prog dump xlated … visual`: one
/// dashed cluster per function, an ENTRY and EXIT node per function, one record node per
/// basic block listing its instructions, edges fall-through first then the jump target.
pub fn dot_graph(prog: &Program) -> String {
    let insns = insns_for_dump(&prog.xlated);
    let plain = prog.dump_xlated(&DumpOptions {
        dialect: kbpf_isa::disasm::Dialect::Bpftool71,
        ..Default::default()
    });
    let mut lines: BTreeMap<usize, String> = BTreeMap::new();
    for l in plain.lines() {
        if let Some((n, _)) = insn_line(l) {
            lines.insert(n, l.to_string());
        }
    }
    let mut starts: Vec<usize> = prog.xlated.subprog_starts.clone();
    if starts.is_empty() || starts[0] != 0 {
        starts.insert(0, 0);
    }
    starts.sort_unstable();
    starts.dedup();
    let mut out = String::from("digraph \"DOT graph for eBPF program\" {\n");
    for (fi, &fstart) in starts.iter().enumerate() {
        let fend = starts.get(fi + 1).copied().unwrap_or(insns.len());
        out.push_str(&func_graph(fi, fstart, fend, &insns, &lines));
    }
    out.push_str("}\n");
    out
}

/// Jump target of a jump at `i` (None for calls, exits and non-jumps).
fn jump_target(insn: &Insn, i: usize) -> Option<usize> {
    let class = insn.class();
    if class != BPF_JMP && class != BPF_JMP32 {
        return None;
    }
    let op = insn.code & 0xf0;
    if op == BPF_CALL || op == BPF_EXIT {
        return None;
    }
    let off = if class == BPF_JMP32 && op == BPF_JA {
        insn.imm as i64
    } else {
        insn.off as i64
    };
    let t = i as i64 + off + 1;
    (t >= 0).then_some(t as usize)
}

fn is_exit(insn: &Insn) -> bool {
    insn.class() == BPF_JMP && insn.code & 0xf0 == BPF_EXIT
}

fn is_goto(insn: &Insn) -> bool {
    (insn.class() == BPF_JMP || insn.class() == BPF_JMP32) && insn.code & 0xf0 == BPF_JA
}

fn dot_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '<' | '>' | '|' | '&' | '{' | '}' | '"' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

fn func_graph(
    fi: usize,
    start: usize,
    end: usize,
    insns: &[Insn],
    lines: &BTreeMap<usize, String>,
) -> String {
    // Instruction positions of the function (skipping the second half of ld_imm64).
    let mut pos = Vec::new();
    let mut i = start;
    while i < end {
        pos.push(i);
        i += if insns[i].is_ld_imm64() { 2 } else { 1 };
    }
    let mut leaders = std::collections::BTreeSet::new();
    leaders.insert(start);
    for &p in &pos {
        let insn = &insns[p];
        if let Some(t) = jump_target(insn, p) {
            if (start..end).contains(&t) {
                leaders.insert(t);
            }
            let next = p + 1;
            if next < end {
                leaders.insert(next);
            }
        } else if is_exit(insn) && p + 1 < end {
            leaders.insert(p + 1);
        }
    }
    let leaders: Vec<usize> = leaders.into_iter().collect();
    // Block k (0-based) gets node number k + 2; 0 is ENTRY and 1 is EXIT.
    let block_of = |insn: usize| -> usize {
        match leaders.binary_search(&insn) {
            Ok(k) => k + 2,
            Err(k) => k + 1,
        }
    };
    let mut o = format!(
        "subgraph \"cluster_{fi}\" {{\n\tstyle=\"dashed\";\n\tcolor=\"black\";\n\tlabel=\"func_{fi} ()\";\n\tfn_{fi}_bb_0 [shape=Mdiamond,style=filled,label=\"ENTRY\"];\n\n"
    );
    let mut edges = vec![(0usize, 2usize)];
    for (k, &b) in leaders.iter().enumerate() {
        let bend = leaders.get(k + 1).copied().unwrap_or(end);
        let members: Vec<usize> = pos
            .iter()
            .copied()
            .filter(|p| (b..bend).contains(p))
            .collect();
        o.push_str(&format!(
            "\tfn_{fi}_bb_{} [shape=record,style=filled,label=\"{{",
            k + 2
        ));
        for (j, p) in members.iter().enumerate() {
            let line = lines.get(p).cloned().unwrap_or_default();
            if j > 0 {
                o.push_str(" | ");
            }
            o.push_str(&dot_escape(&line));
            o.push_str("\\l\\\n");
        }
        o.push_str("}\"];\n\n");
        let Some(&last) = members.last() else {
            continue;
        };
        let li = &insns[last];
        let node = k + 2;
        // As bpftool draws it, an `exit` falls through to the next block like any other
        // instruction; only the last block links to EXIT.
        if let Some(t) = jump_target(li, last) {
            if !is_goto(li) && bend < end {
                edges.push((node, block_of(bend)));
            }
            if (start..end).contains(&t) {
                edges.push((node, block_of(t)));
            }
        } else if bend < end {
            edges.push((node, block_of(bend)));
        } else {
            edges.push((node, 1));
        }
    }
    o.push_str(&format!(
        "\tfn_{fi}_bb_1 [shape=Mdiamond,style=filled,label=\"EXIT\"];\n\n"
    ));
    for (a, b) in edges {
        o.push_str(&format!(
            "\tfn_{fi}_bb_{a}:s -> fn_{fi}_bb_{b}:n [style=\"solid,bold\", color=black, weight=10, constraint=true];\n"
        ));
    }
    o.push_str(&format!(
        "\tfn_{fi}_bb_0:s -> fn_{fi}_bb_1:n [style=\"invis\", constraint=true];\n}}\n"
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_escapes() {
        assert_eq!(dot_escape("if r0 >= 0x8 goto"), "if r0 \\>= 0x8 goto");
        assert_eq!(dot_escape("w1 &= 7"), "w1 \\&= 7");
    }
}
