//! House rule: no import circles between the modules of a crate.
//!
//! For every crate under `crates/`, the top-level modules (`src/x.rs` with its children
//! `src/x/…`) form a graph with an edge `a → b` when code in `a` names `crate::b` (comments
//! and `#[cfg(test)] mod tests` left out: tests may reach anywhere). A strongly connected
//! group of two or more modules is a circle. The circles known today are listed in
//! [`KNOWN`]; a new one, or a known one that grows, fails the test, and so does a listed one
//! that is gone (remove it from the list).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles not yet taken apart, as `crate: modules`.
const KNOWN: &[(&str, &[&str])] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Source without line comments and without the unit-test module.
fn code_of(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(i) => &src[..i],
        None => src,
    };
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `code` names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 {
            let prev = code.as_bytes()[i - 1];
            if prev.is_ascii_alphanumeric() || prev == b'_' {
                continue; // e.g. `kbpf_crate::`
            }
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let id = ident_at(item.trim());
                if !id.is_empty() {
                    out.insert(id.to_string());
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id.to_string());
            }
        }
    }
    out
}

/// Tarjan's strongly connected components of two or more nodes.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    scc.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// The module graph of the crate whose sources are in `src`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let top = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (!matches!(name, "lib" | "main")).then(|| name.to_string())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|p| top(p)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for f in &files {
        let Some(m) = top(f) else { continue };
        // A `tests.rs` child is the unit-test module of its parent.
        if f.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).expect("read source"));
        for to in named_modules(&code) {
            if to != m && modules.contains(&to) {
                edges.get_mut(&m).expect("module").insert(to);
            }
        }
    }
    edges
}

#[test]
fn finds_a_planted_circle() {
    let dir = std::env::temp_dir().join(format!("kbpf-module-graph-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b; mod c;").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::{b::X, c};\n// crate::d\n").unwrap();
    std::fs::write(src.join("b.rs"), "mod inner;").unwrap();
    std::fs::write(src.join("b/inner.rs"), "fn f() { crate::a::g() }").unwrap();
    std::fs::write(
        src.join("c.rs"),
        "#[cfg(test)]\nmod tests { use crate::a; }",
    )
    .unwrap();
    let found = circles(&module_graph(&src));
    std::fs::remove_dir_all(&dir).ok();
    let want: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    assert_eq!(found, vec![want]);
}

#[test]
fn no_new_import_circles() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&crates)
        .expect("crates/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    names.sort();
    let mut found: BTreeMap<String, Vec<BTreeSet<String>>> = BTreeMap::new();
    for c in &names {
        let name = c.file_name().unwrap().to_string_lossy().into_owned();
        let cs = circles(&module_graph(&c.join("src")));
        if !cs.is_empty() {
            found.insert(name, cs);
        }
    }
    let known: BTreeSet<(String, BTreeSet<String>)> = KNOWN
        .iter()
        .map(|(c, ms)| (c.to_string(), ms.iter().map(|m| m.to_string()).collect()))
        .collect();
    let mut problems = Vec::new();
    for (c, cs) in &found {
        for s in cs {
            if !known.contains(&(c.clone(), s.clone())) {
                problems.push(format!("new import circle in crate {c}: {s:?}"));
            }
        }
    }
    for (c, s) in &known {
        if !found.get(c).is_some_and(|cs| cs.contains(s)) {
            problems.push(format!(
                "the known circle {c}: {s:?} is gone or changed: update KNOWN in {}",
                file!()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
