//! kbpf-verifier (placeholder; see the issue that builds it).
