//! kbpf-vm (placeholder; see the issue that builds it).
