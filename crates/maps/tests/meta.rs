//! Inner-map acceptance ("meta equal", kernel-semantics §4 and the template rows of §11).

use kbpf_maps::uapi::*;
use kbpf_maps::{Errno, Map, MapAttr, MapType};

fn m(t: MapType, k: u32, v: u32, n: u32, flags: u32) -> Map {
    Map::create(&MapAttr::new(t, k, v, n).flags(flags), None)
        .unwrap_or_else(|e| panic!("create {t}: {e}"))
}

fn outer_of(t: MapType, template: &Map) -> Map {
    Map::create(&MapAttr::new(t, 4, 4, 8).name("outer"), Some(template)).unwrap()
}

fn insert(outer: &Map, inner: &Map) -> Result<(), Errno> {
    outer
        .update_inner_map(&0u32.to_ne_bytes(), inner, BPF_ANY)
        .map_err(|e| e.errno)
}

#[test]
fn plain_array_template_requires_equal_max_entries() {
    let tmpl = m(MapType::Array, 4, 4, 3, 0);
    for outer_t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let o = outer_of(outer_t, &tmpl);
        assert_eq!(insert(&o, &m(MapType::Array, 4, 4, 3, 0)), Ok(()));
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 4, 5, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 4, 1, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 4, 3, BPF_F_INNER_MAP)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 8, 3, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 4, 3, BPF_F_MMAPABLE)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 4, 3, BPF_F_RDONLY)),
            Ok(())
        );
        assert_eq!(
            insert(&o, &m(MapType::PercpuArray, 4, 4, 3, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Hash, 4, 4, 3, 0)),
            Err(Errno::EINVAL)
        );
        let aom = Map::create(&MapAttr::new(MapType::ArrayOfMaps, 4, 4, 3), Some(&tmpl)).unwrap();
        assert_eq!(insert(&o, &aom), Err(Errno::EINVAL));
        assert_eq!(insert(&o, &tmpl), Ok(()), "the template itself matches");
        assert_eq!(insert(&o, &o), Err(Errno::EINVAL), "the outer itself");
    }
}

#[test]
fn inner_map_flag_template_accepts_any_size() {
    let tmpl = m(MapType::Array, 4, 4, 3, BPF_F_INNER_MAP);
    for outer_t in [MapType::ArrayOfMaps, MapType::HashOfMaps] {
        let o = outer_of(outer_t, &tmpl);
        for n in [3, 5, 1, 1_000_000] {
            assert_eq!(
                insert(&o, &m(MapType::Array, 4, 4, n, BPF_F_INNER_MAP)),
                Ok(()),
                "n{n}"
            );
        }
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 4, 3, 0)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(
                &o,
                &m(MapType::Array, 4, 4, 3, BPF_F_INNER_MAP | BPF_F_MMAPABLE)
            ),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Array, 4, 8, 3, BPF_F_INNER_MAP)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            insert(&o, &m(MapType::Hash, 4, 4, 3, 0)),
            Err(Errno::EINVAL)
        );
    }
}

#[test]
fn hash_templates_ignore_max_entries() {
    let tmpl = m(MapType::Hash, 4, 4, 16, 0);
    let o = outer_of(MapType::ArrayOfMaps, &tmpl);
    for n in [16, 64, 1] {
        assert_eq!(insert(&o, &m(MapType::Hash, 4, 4, n, 0)), Ok(()));
    }
    assert_eq!(
        insert(&o, &m(MapType::Hash, 8, 4, 16, 0)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        insert(&o, &m(MapType::Hash, 4, 8, 16, 0)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        insert(&o, &m(MapType::Hash, 4, 4, 16, BPF_F_NO_PREALLOC)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        insert(&o, &m(MapType::LruHash, 4, 4, 16, 0)),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        insert(&o, &m(MapType::PercpuHash, 4, 4, 16, 0)),
        Err(Errno::EINVAL)
    );

    let lru = outer_of(MapType::HashOfMaps, &m(MapType::LruHash, 4, 4, 16, 0));
    assert_eq!(insert(&lru, &m(MapType::LruHash, 4, 4, 32, 0)), Ok(()));
    let h = outer_of(MapType::ArrayOfMaps, &m(MapType::Hash, 4, 4, 8, 0));
    assert_eq!(insert(&h, &m(MapType::Hash, 4, 4, 1000, 0)), Ok(()));
}

#[test]
fn percpu_array_template_is_stricter_than_the_kernel() {
    // Linux 6.18 accepts n4 <- n8 and n8 <- n2 but inlines with the template's bound; kbpf
    // refuses a different max_entries (documented in the meta module).
    let tmpl = m(MapType::PercpuArray, 4, 8, 8, 0);
    let o = outer_of(MapType::ArrayOfMaps, &tmpl);
    assert_eq!(insert(&o, &m(MapType::PercpuArray, 4, 8, 8, 0)), Ok(()));
    let e = o
        .update_inner_map(
            &0u32.to_ne_bytes(),
            &m(MapType::PercpuArray, 4, 8, 2, 0),
            BPF_ANY,
        )
        .unwrap_err();
    assert_eq!(e.errno, Errno::EINVAL);
    assert!(e.detail.contains("max_entries"), "{e}");
}

#[test]
fn meta_is_a_detached_copy() {
    let tmpl = m(MapType::Array, 4, 24, 5, 0);
    let o = outer_of(MapType::ArrayOfMaps, &tmpl);
    let meta = *o.inner_map_meta().unwrap().desc();
    drop(tmpl);
    assert_eq!(meta.map_type, MapType::Array);
    assert_eq!(
        (meta.key_size, meta.value_size, meta.max_entries),
        (4, 24, 5)
    );
    assert_eq!((meta.elem_size, meta.index_mask), (24, 7));
    let hash_meta = outer_of(MapType::ArrayOfMaps, &m(MapType::Hash, 8, 24, 5, 0));
    let d = hash_meta.inner_map_meta().unwrap().desc();
    assert_eq!(
        (d.elem_size, d.index_mask),
        (0, 0),
        "only array metas carry array fields"
    );
}

#[test]
fn mismatch_message_names_the_field() {
    let o = outer_of(MapType::ArrayOfMaps, &m(MapType::Array, 4, 4, 3, 0));
    let inner = Map::create(&MapAttr::new(MapType::Array, 4, 4, 5).name("inner_b"), None).unwrap();
    let e = o
        .update_inner_map(&0u32.to_ne_bytes(), &inner, BPF_ANY)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "map 'outer': inner map max_entries 5 != template max_entries 3: Invalid argument"
    );
}
