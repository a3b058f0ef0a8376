//! kbpf-object (placeholder; see the issue that builds it).
