//! kbpf-rewrite (placeholder; see the issue that builds it).
