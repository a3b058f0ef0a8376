//! The register and stack state lines of the verifier log (`print_verifier_state`,
//! `print_insn_state`), as the kernel prints them at log level 2 and after errors.

use super::*;

impl Checker<'_> {
    pub(super) fn map_info(&self, reg: &RegState) -> Option<(&str, u32, u32)> {
        self.maps
            .get(reg.map as usize)
            .map(|m| (m.desc.name.as_str(), m.desc.key_size, m.desc.value_size))
    }

    pub(super) fn fmt_reg(&self, reg: &RegState) -> String {
        fmt_reg(reg, self.map_info(reg))
    }

    /// `print_verifier_state`: registers and stack of the innermost frame.
    pub(super) fn state_text(&self, st: &VerifierState, all: bool) -> String {
        let f = st.cur();
        let mut s = String::new();
        if f.frameno != 0 {
            s.push_str(&format!(" frame{}:", f.frameno));
        }
        for (i, r) in f.regs.iter().enumerate() {
            if r.ty == RegType::NotInit || (!all && self.scratched_regs & (1 << i) == 0) {
                continue;
            }
            s.push_str(&format!(" R{i}={}", self.fmt_reg(r)));
        }
        for (i, slot) in f.stack.iter().enumerate() {
            if slot.types.iter().all(|t| *t == SlotType::Invalid) {
                continue;
            }
            if !all && (i >= 64 || self.scratched_stack & (1 << i) == 0) {
                continue;
            }
            let off = -((i as i64 + 1) * BPF_REG_SIZE as i64);
            if slot.is_spill() {
                // The bytes above a narrower spill (types[] from the top down to the first
                // spilled byte), then the spilled register.
                let above: String = slot
                    .types
                    .iter()
                    .take_while(|t| **t != SlotType::Spill)
                    .map(|t| t.as_char())
                    .collect();
                s.push_str(&format!(" fp{off}={above}{}", self.fmt_reg(&slot.spilled)));
            } else {
                let t: String = slot.types.iter().map(|t| t.as_char()).collect();
                s.push_str(&format!(" fp{off}={t}"));
            }
        }
        s
    }

    /// `print_insn_state`: after an instruction at level 2, the touched registers on the
    /// instruction's line (aligned like the kernel) or on a new `N:` line.
    pub(super) fn print_insn_state(&mut self, st: &VerifierState, next_idx: usize) {
        if self.level() < 2 || (self.scratched_regs == 0 && self.scratched_stack == 0) {
            return;
        }
        let text = self.state_text(st, false);
        if text.is_empty() {
            return;
        }
        if self.insn_line_end == Some(self.log.len()) {
            self.log.pop(); // the newline
            let pos = self.log.len() + 1 - self.line_start;
            let width = (pos + 4).max(40).div_ceil(8) * 8 - pos - 1;
            self.log.push_str(&" ".repeat(width.saturating_sub(1)));
            self.log.push(' ');
            self.log.push(';');
        } else {
            self.log.push_str(&format!("{next_idx}:"));
        }
        self.log.push_str(&text);
        self.log.push('\n');
    }
}
