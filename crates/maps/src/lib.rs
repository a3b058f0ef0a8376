//! kbpf-maps (placeholder; see the issue that builds it).
