//! The kernel/bpftool text form of instructions (filled in by the disassembler work).
