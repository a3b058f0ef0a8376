//! `prog load|loadall`: an object built into verified, translated programs the way
//! `bpf_object__load` does (maps reused by name or index, libbpf's messages on failure),
//! their maps joined to the session and the programs pinned.

use super::*;

// ---------------------------------------------------------------------------------------
// load / loadall

/// What `build` gives back for each program of the object.
pub(super) struct Built {
    pub(super) program: Program,
    pub(super) prog_type: u32,
}

pub(super) struct BuiltObject {
    pub(super) progs: Vec<Built>,
    /// Programs not loaded because their autoload is off (`SEC("?…")`), in object order.
    pub(super) not_loaded: Vec<String>,
    /// Every map of the object: libbpf name, map, reused, template record.
    pub(super) maps: Vec<(String, Map, bool, Option<TemplateRecord>)>,
    /// PROG_ARRAY initial slots (`.values = { [0] = &prog }`), written once the programs
    /// exist, as libbpf's `bpf_object__init_prog_arrays` does.
    pub(super) prog_slots: Vec<kbpf_loader::ProgSlot>,
    pub(super) gpl: bool,
    pub(super) registry: Arc<Registry>,
    /// With `-d`: the verifier logs of the loaded programs (libbpf's lines, for stderr).
    pub(super) debug_log: String,
}

/// Why `build` failed: the libbpf-style lines printed on stderr, then bpftool's error.
pub(super) struct BuildError {
    pub(super) libbpf: String,
    pub(super) error: String,
    /// Whether bpftool adds its libbpf-strict-mode warning (failures after opening).
    pub(super) warn: bool,
}

impl BuildError {
    pub(super) fn message(&self) -> String {
        format!("{}{}", self.libbpf, self.error)
    }
}

pub(super) fn errno_text(errno: i32) -> String {
    strerror(&std::io::Error::from_raw_os_error(errno))
}

/// Loads every program of `path` the way `bpf_object__load` does, reusing the maps given by
/// name, under the session's kernel profile; with `-d` the verifier log (level 2) is printed
/// also on success (bpftool's `-d`).
pub(super) fn build(
    path: &Path,
    type_override: Option<u32>,
    reuse: &[(String, Map)],
    opts: &crate::session::Options,
) -> Result<BuiltObject, BuildError> {
    build_with(path, type_override, reuse, &[], opts)
}

fn build_with(
    path: &Path,
    type_override: Option<u32>,
    reuse: &[(String, Map)],
    reuse_idx: &[(usize, Map)],
    opts: &crate::session::Options,
) -> Result<BuiltObject, BuildError> {
    let debug = opts.debug;
    let mut debug_log = String::new();
    let shown = path.display().to_string();
    let obj = kbpf_object::BpfObject::open(path).map_err(|e| BuildError {
        libbpf: if path.exists() {
            format!("libbpf: failed to open {shown}: {e}\n")
        } else {
            format!("libbpf: elf: failed to open {shown}: No such file or directory\n")
        },
        error: "failed to open object file".into(),
        warn: false,
    })?;
    let registry = Arc::new(Registry::new());
    let core_target = crate::kernel::core_target(&opts.profile).map_err(|e| BuildError {
        libbpf: format!("libbpf: {e}\n"),
        error: "failed to load object file".into(),
        warn: true,
    })?;
    let mut lopts = kbpf_loader::LoadOptions {
        maps_profile: opts.profile.maps,
        core_target,
        ..Default::default()
    };
    for (n, m) in reuse {
        lopts = lopts.reuse_map(n, m.clone());
    }
    for (i, m) in reuse_idx {
        lopts = lopts.reuse_map_index(*i, m.clone());
    }
    let loaded = kbpf_loader::load_object(&obj, &registry, &lopts).map_err(|e| BuildError {
        libbpf: format!("libbpf: {e}\nlibbpf: failed to load object '{shown}'\n"),
        error: "failed to load object file".into(),
        warn: true,
    })?;
    let env = kbpf_run::maps_env(&loaded);
    let mut progs = Vec::new();
    // bpf_object__load skips programs whose autoload is off (`SEC("?…")`).
    for lp in loaded.programs.iter().filter(|p| p.autoload) {
        let btf = kbpf_run::funcs_btf(&obj, lp);
        let ropts = kbpf_run::LoadOptions {
            log_level: if debug { 2 } else { 1 },
            prog_type: type_override,
            profile: opts.profile.clone(),
            ..Default::default()
        };
        match Program::load(lp, &env, &ropts, &btf) {
            Ok(p) => {
                if debug {
                    debug_log.push_str(&format!(
                        "libbpf: prog '{}': -- BEGIN PROG LOAD LOG --\n{}{}-- END PROG LOAD LOG --\n",
                        lp.name,
                        p.verifier_log,
                        if p.verifier_log.ends_with('\n') || p.verifier_log.is_empty() {
                            ""
                        } else {
                            "\n"
                        }
                    ));
                }
                let t = p.prog_type.as_u32();
                progs.push(Built {
                    program: p,
                    prog_type: t,
                });
            }
            Err(e) => {
                let errno = e.errno();
                let mut l = format!(
                    "libbpf: prog '{}': BPF program load failed: {}\n",
                    lp.name,
                    errno_text(errno)
                );
                match e.log() {
                    Some(log) if !log.is_empty() => {
                        l.push_str(&format!(
                            "libbpf: prog '{}': -- BEGIN PROG LOAD LOG --\n{log}{}-- END PROG LOAD LOG --\n",
                            lp.name,
                            if log.ends_with('\n') { "" } else { "\n" }
                        ));
                    }
                    _ => l.push_str(&format!("libbpf: prog '{}': {e}\n", lp.name)),
                }
                l.push_str(&format!(
                    "libbpf: prog '{}': failed to load: -{errno}\nlibbpf: failed to load object '{shown}'\n",
                    lp.name
                ));
                return Err(BuildError {
                    libbpf: l,
                    error: "failed to load object file".into(),
                    warn: true,
                });
            }
        }
    }
    let maps = loaded
        .maps
        .iter()
        .map(|lm| {
            let t = lm.map.inner_map_meta().map(|meta| {
                let d = meta.desc();
                TemplateRecord {
                    map_type: d.map_type.raw(),
                    key_size: d.key_size,
                    value_size: d.value_size,
                    max_entries: d.max_entries,
                    map_flags: d.map_flags,
                }
            });
            (lm.name.clone(), lm.map.clone(), lm.reused, t)
        })
        .collect();
    Ok(BuiltObject {
        progs,
        not_loaded: loaded
            .programs
            .iter()
            .filter(|p| !p.autoload)
            .map(|p| p.name.clone())
            .collect(),
        maps,
        prog_slots: loaded.pending_prog_slots.clone(),
        gpl: kbpf_verifier::license_is_gpl_compatible(&loaded.license),
        registry,
        debug_log,
    })
}

/// The parsed `prog load`/`loadall` arguments.
#[derive(Debug, Default, PartialEq)]
pub struct LoadArgs {
    /// The object file.
    pub object: String,
    /// Where to pin.
    pub path: String,
    /// `type TYPE` (the program type number).
    pub prog_type: Option<u32>,
    /// `map idx IDX MAP` / `map name NAME MAP`: the map's selector and the kbpf map id.
    pub maps: Vec<(MapSel, u32)>,
    /// `pinmaps DIR`.
    pub pinmaps: Option<String>,
}

/// `map { idx IDX | name NAME }`.
#[derive(Clone, Debug, PartialEq)]
pub enum MapSel {
    /// By position among the object's maps.
    Idx(usize),
    /// By name.
    Name(String),
}

/// Parses `OBJ PATH [type TYPE] [map {idx IDX | name NAME} MAP]... [pinmaps DIR]` as bpftool
/// does (keywords by prefix, in any order). `Err` carries stderr text printed before the
/// error (libbpf's lines for an unknown type) and the reply.
pub fn parse_load_args(s: &Session, w: &mut Words<'_>) -> Result<LoadArgs, (String, Reply)> {
    w.require(2).map_err(|e| (String::new(), Reply::from(e)))?;
    let mut a = LoadArgs {
        object: w.next().unwrap_or_default().to_string(),
        path: w.next().unwrap_or_default().to_string(),
        ..LoadArgs::default()
    };
    while let Some(word) = w.peek() {
        if is_prefix(word, "type") {
            w.next();
            let Some(t) = w.next() else {
                return Err((
                    String::new(),
                    GrammarError::new("'type' needs at least 1 arguments, 0 found").into(),
                ));
            };
            match LOAD_TYPES.iter().find(|(n, _)| *n == t) {
                Some((_, n)) => a.prog_type = Some(*n),
                None => {
                    return Err((
                        format!(
                            "libbpf: failed to guess program type from ELF section '{t}/'\nlibbpf: supported section(type) names are: {LIBBPF_SECTIONS}\n"
                        ),
                        Reply::silent(-1),
                    ));
                }
            }
        } else if is_prefix(word, "map") {
            w.next();
            if let Err(e) = w.require(4) {
                return Err((String::new(), e.into()));
            }
            let kind = w.next().unwrap_or_default();
            let val = w.next().unwrap_or_default();
            let sel = if is_prefix(kind, "idx") {
                match strtoul(val, 0) {
                    Some(i) => MapSel::Idx(i as usize),
                    None => {
                        return Err((
                            String::new(),
                            Reply::err(format!("can't parse map index {val}"), -1),
                        ));
                    }
                }
            } else if is_prefix(kind, "name") {
                MapSel::Name(val.to_string())
            } else {
                return Err((
                    String::new(),
                    Reply::err(format!("expected 'idx' or 'name', got: '{kind}'?"), -1),
                ));
            };
            let id = crate::handle::parse_map(s, w).map_err(|r| (String::new(), r))?;
            a.maps.push((sel, id));
        } else if is_prefix(word, "pinmaps") {
            w.next();
            let Some(d) = w.next() else {
                return Err((
                    String::new(),
                    GrammarError::new("'pinmaps' needs at least 1 arguments, 0 found").into(),
                ));
            };
            a.pinmaps = Some(d.to_string());
        } else {
            return Err((
                String::new(),
                Reply::err(
                    format!("expected no more arguments, 'type', 'map' or 'dev', got: '{word}'?"),
                    -1,
                ),
            ));
        }
    }
    Ok(a)
}

pub(super) fn load(s: &mut Session, w: &mut Words<'_>) -> Reply {
    load_cmd(s, w, true)
}

pub(super) fn loadall(s: &mut Session, w: &mut Words<'_>) -> Reply {
    load_cmd(s, w, false)
}

fn fail(s: &mut Session, libbpf: &str, r: Reply, warn: bool) -> Reply {
    // libbpf prints as it goes, before bpftool's own error (also under -j).
    s.note(libbpf);
    let mut r = r;
    if warn && !s.opts.json {
        r.stderr.push_str(STRICT_WARNING);
    }
    r
}

/// The message of an error reply (without `Error: `).
fn err_text(r: &Reply) -> String {
    r.stderr
        .trim_end()
        .strip_prefix("Error: ")
        .unwrap_or(r.stderr.trim_end())
        .to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `mkdir` of a pin directory as libbpf and bpftool do it (the parent must exist).
fn make_pin_dir(s: &Session, path: &str) -> Result<(), String> {
    let Some(rel) = s.resolve(path) else {
        return Err(format!(
            "can't mount BPF file system to pin the object ({path}): not under {SYS_BPFFS}"
        ));
    };
    let dir = s.opts.bpffs.join(rel);
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir(&dir).map_err(|e| {
        format!(
            "can't mount BPF file system to pin the object ({path}): mount --make-private {path} failed: {}",
            strerror(&e)
        )
    })
}

fn load_cmd(s: &mut Session, w: &mut Words<'_>, first_only: bool) -> Reply {
    let args = match parse_load_args(s, w) {
        Ok(a) => a,
        Err((pre, r)) => return fail(s, &pre, r, false),
    };
    let object = match std::fs::canonicalize(&args.object) {
        Ok(p) => p,
        Err(_) => PathBuf::from(&args.object),
    };
    let mut reuse = Vec::new();
    let mut reuse_idx = Vec::new();
    for (sel, id) in &args.maps {
        let Some(e) = s.map(*id) else {
            return Reply::err(
                format!("get map by id ({id}): No such file or directory"),
                -1,
            );
        };
        match sel {
            MapSel::Name(n) => reuse.push((n.clone(), e.map.clone())),
            MapSel::Idx(i) => reuse_idx.push((*i, e.map.clone())),
        }
    }
    // bpftool checks that named maps exist in the object before loading.
    if let Ok(obj) = kbpf_object::BpfObject::open(&object) {
        for (n, _) in &reuse {
            if !obj.maps.iter().any(|m| &m.name == n) {
                return Reply::err(
                    format!("unable to find map {n}: No such file or directory"),
                    -1,
                );
            }
        }
        for (i, _) in &reuse_idx {
            if *i >= obj.maps.len() {
                return Reply::err(
                    format!(
                        "map index {i} is too big, the object has only {} maps",
                        obj.maps.len()
                    ),
                    -1,
                );
            }
        }
    }
    let shown = Path::new(&args.object);
    let mut built = match build_with(shown, args.prog_type, &reuse, &reuse_idx, &s.opts) {
        Ok(b) => b,
        Err(e) => return fail(s, &e.libbpf, Reply::err(e.error, -1), e.warn),
    };
    let log = std::mem::take(&mut built.debug_log);
    s.note(&log);
    // The maps join the session (reused ones are there already).
    let mut names: BTreeMap<String, u32> = BTreeMap::new();
    let mut map_pins = Vec::new();
    for (name, map, _reused, tmpl) in &built.maps {
        let id = match s.id_of(map) {
            Some(id) => id,
            None => s.add_map(map.clone(), tmpl.clone()),
        };
        names.insert(name.clone(), id);
        map_pins.push((name.clone(), id));
    }
    if built.progs.is_empty() {
        return fail(
            s,
            &format!("libbpf: failed to load object '{}'\n", args.object),
            Reply::err("object file doesn't contain any bpf program", -1),
            true,
        );
    }
    // Pin the programs.
    if !first_only && let Err(m) = make_pin_dir(s, &args.path) {
        return fail(s, "", Reply::err(m, -1), true);
    }
    // bpf_object__pin_programs refuses a program that was not loaded (autoload off).
    if !first_only && let Some(name) = built.not_loaded.first() {
        return fail(
            s,
            &format!("libbpf: prog '{name}': can't pin program that wasn't loaded\n"),
            Reply::err("failed to pin all programs", -1),
            true,
        );
    }
    let registry = built.registry.clone();
    let gpl = built.gpl;
    let prog_slots = std::mem::take(&mut built.prog_slots);
    let slot_maps: Vec<(String, Map)> = built
        .maps
        .iter()
        .map(|(n, m, ..)| (n.clone(), m.clone()))
        .collect();
    let uid = unsafe { libc::getuid() };
    let loaded_at = now();
    let mut new_ids = Vec::new();
    for (k, b) in built.progs.into_iter().enumerate() {
        let program = b.program;
        let bound = bound_ids(s, &program);
        let maps: BTreeMap<String, u32> = names
            .iter()
            .filter(|(_, id)| bound.contains(id))
            .map(|(n, id)| (n.clone(), *id))
            .collect();
        let id = s.next_prog_id;
        s.next_prog_id += 1;
        let origin = Origin {
            object: object.clone(),
            prog: program.name.clone(),
            type_override: args.prog_type,
            maps,
            tag: program.tag(),
        };
        let pin_path = if first_only {
            if k > 0 {
                // Loaded (and verified) but not pinned: gone at the end of the command.
                continue;
            }
            args.path.clone()
        } else {
            format!("{}/{}", args.path.trim_end_matches('/'), program.name)
        };
        s.live_progs.insert(
            id,
            LiveProg {
                program: Arc::new(program),
                pins: Vec::new(),
                map_ids: bound,
                prog_type: b.prog_type,
                loaded_at,
                uid,
                gpl,
                origin,
                _registry: registry.clone(),
            },
        );
        new_ids.push(id);
        if let Err(r) = pin_prog(s, id, &pin_path) {
            let name = s.live_progs[&id].program.name.clone();
            for i in &new_ids {
                s.live_progs.remove(i);
            }
            sync_records(s);
            if first_only {
                return fail(s, "", r, true);
            }
            let why = err_text(&r);
            let errtext = why.rsplit(": ").next().unwrap_or("").to_string();
            return fail(
                s,
                &format!("libbpf: prog '{name}': failed to pin at '{pin_path}': {errtext}\n"),
                Reply::err("failed to pin all programs", -1),
                true,
            );
        }
    }
    // PROG_ARRAY initial slots, now that the programs have ids.
    for slot in &prog_slots {
        let map = slot_maps
            .iter()
            .find(|(n, _)| *n == slot.map)
            .map(|(_, m)| m);
        let pid = new_ids
            .iter()
            .copied()
            .find(|id| s.live_progs[id].program.name == slot.program);
        if let (Some(map), Some(pid)) = (map, pid)
            && let Some(r) = prog_ref(s, pid)
            && let Err(e) = map.update_prog(&slot.slot.to_ne_bytes(), r, 0)
        {
            return fail(
                s,
                &format!(
                    "libbpf: map '{}': failed to initialize slot [{}] to prog '{}': {e}
",
                    slot.map, slot.slot, slot.program
                ),
                Reply::err("failed to load object file", -1),
                true,
            );
        }
    }
    if let Some(dir) = &args.pinmaps {
        if let Err(m) = make_pin_dir(s, dir) {
            return fail(s, "", Reply::err(m, -1), true);
        }
        for (name, id) in map_pins {
            // libbpf's pin names: `.` (internal maps: `obj.bss`) becomes `_`.
            let p = format!("{}/{}", dir.trim_end_matches('/'), name.replace('.', "_"));
            if let Err(r) = s.pin_map(id, &p) {
                let why = err_text(&r);
                let errtext = why.rsplit(": ").next().unwrap_or("").to_string();
                return fail(
                    s,
                    &format!("libbpf: map '{name}': failed to pin at '{p}': {errtext}\n"),
                    Reply::err("failed to pin all maps", -1),
                    true,
                );
            }
        }
    }
    sync_records(s);
    Reply::ok("", Json::Null)
}
