//! The recorded profiles of `tests/profiles/` (one per kernel build kbpf has met) parse, name
//! every field with an origin, and differ from each other only where those builds really
//! differ, so a hand edit that breaks one is caught here.

use kbpf_profile::{InnerMapLookup, KernelProfile};

fn recorded() -> Vec<(String, KernelProfile)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/profiles");
    let mut v: Vec<(String, KernelProfile)> = std::fs::read_dir(dir)
        .expect("tests/profiles")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let prof = KernelProfile::from_json_file(p.to_str().unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, prof)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn recorded_profiles_are_complete_and_named_after_their_build() {
    let all = recorded();
    assert!(all.len() >= 2, "at least the two 6.18.44 builds");
    for (file, p) in &all {
        let release = p.kernel_release.as_deref().expect("kernel_release");
        assert_eq!(file, &format!("{release}.json"));
        for field in KernelProfile::field_names() {
            assert!(
                p.origins.contains_key(&field),
                "{file}: {field} has no origin"
            );
        }
        assert!(p.unsupported().is_empty(), "{file}: {:?}", p.unsupported());
    }
}

#[test]
fn the_two_builds_differ_in_htab_size_and_inner_map_lookup_type_only() {
    let all = recorded();
    let get = |r: &str| {
        &all.iter()
            .find(|(f, _)| f == &format!("{r}.json"))
            .unwrap_or_else(|| panic!("{r}.json"))
            .1
    };
    let old = get("6.18.44-fc-v1098");
    let new = get("6.18.44-fc-v1300");
    assert_eq!(old.maps.sizeof_bpf_htab, 896);
    assert_eq!(new.maps.sizeof_bpf_htab, 832);
    assert_eq!(old.verifier.inner_map_lookup, InnerMapLookup::MapValue);
    assert_eq!(new.verifier.inner_map_lookup, InnerMapLookup::MapPtr);
    let fields: Vec<String> = old.diff(new).into_iter().map(|(f, _, _)| f).collect();
    assert_eq!(
        fields,
        ["maps.sizeof_bpf_htab", "verifier.inner_map_lookup"],
        "unexpected differences"
    );
    // The built-in profile is the older build's.
    assert!(KernelProfile::builtin().diff(old).is_empty());
}
