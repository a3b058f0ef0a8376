//! kbpf-maglev (placeholder; see the issue that builds it).
