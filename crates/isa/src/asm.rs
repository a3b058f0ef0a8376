//! Assembler for the uBPF-style syntax of the bpf_conformance suite.
