//! kbpf-kernel (placeholder; see the issue that builds it).
