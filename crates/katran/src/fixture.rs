//! A reader of Katran's fixture headers (`katran/lib/testing/fixtures/*.h`): the C++
//! initialiser lists they are written in (`const std::vector<PacketAttributes> NAME = {
//! {.description = …, .inputPacketBuilder = PacketBuilder::newPacket().Eth(…)…}, … };`),
//! parsed by [`crate::cpp_expr`] and evaluated into [`Fixture`]s whose packet builders are
//! [`crate::packet::Builder`]s.

use crate::cpp_expr::{Expr, parse_vectors};
use crate::packet::BuildError;
use crate::packet::eval::{Eval, as_str};

/// One fixture: Katran's `PacketAttributes`.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// 1-based position in its vector.
    pub index: usize,
    /// `.description`.
    pub description: String,
    /// `.expectedReturnValue` ("XDP_TX", …).
    pub expected_return: String,
    /// The input packet, or why it cannot be built.
    pub input: Result<Vec<u8>, String>,
    /// The expected output packet, or why it cannot be built.
    pub expected_output: Result<Vec<u8>, String>,
}

impl Eval {
    /// A fixture from its designated initialiser.
    pub fn fixture(&self, index: usize, e: &Expr) -> Result<Fixture, String> {
        let Expr::Designated(fields) = e else {
            return Err(format!("fixture {index}: not a designated initialiser"));
        };
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        let description = get("description")
            .map(as_str)
            .transpose()?
            .unwrap_or_default();
        let expected_return = get("expectedReturnValue")
            .map(as_str)
            .transpose()?
            .unwrap_or_default();
        let build = |field: &str| -> Result<Vec<u8>, String> {
            let e = get(field).ok_or_else(|| format!("no .{field}"))?;
            let b = self.builder(e)?;
            b.build().map_err(|e: BuildError| e.to_string())
        };
        Ok(Fixture {
            index,
            description,
            expected_return,
            input: build("inputPacketBuilder"),
            expected_output: build("expectedOutputPacketBuilder"),
        })
    }
}

/// Every fixture vector of a fixture header: `(vector name, fixtures)`.
pub fn read_fixture_file(src: &str) -> Result<Vec<(String, Vec<Fixture>)>, String> {
    let ev = Eval::default();
    parse_vectors(src)?
        .into_iter()
        .map(|(name, items)| {
            let fx = items
                .iter()
                .enumerate()
                .map(|(i, e)| ev.fixture(i + 1, e))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name, fx))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &str = r#"
        // a comment
        #include "x.h"
        const std::vector<::katran::PacketAttributes> fx = {
            // 1
            {.description = "one" " two",
             .expectedReturnValue = "XDP_TX",
             .inputPacketBuilder = katran::testing::PacketBuilder::newPacket()
                 .Eth("0x1", "0x2")
                 .IPv4("192.168.1.1", "10.200.1.1", 64, 0, 1, PacketBuilder::IP_FLAG_MF)
                 .TCP(31337, 80, 0, 0, 8192, TH_SYN | TH_ACK)
                 .withCustomOption(0xb7, std::vector<uint8_t>{0x04, 0x00})
                 .payload("ab\x00@cd"),
             .expectedOutputPacketBuilder = PacketBuilder::newPacket()
                 .Eth("02:00:00:00:00:00", "00:00:de:ad:be:af")
                 .IPv6("fc00::1", "fc00::2")
                 .UDP(1, 2)
                 .QUICShortHeader().destConnId({0x41, 0x00}).data("\x01q\x00@").done()},
        };
    "#;

    #[test]
    fn reads_designated_initialisers_and_builder_chains() {
        let v = read_fixture_file(SNIPPET).expect("parses");
        assert_eq!(v.len(), 1);
        let (name, fx) = &v[0];
        assert_eq!(name, "fx");
        assert_eq!(fx.len(), 1);
        let f = &fx[0];
        assert_eq!(f.description, "one two");
        assert_eq!(f.expected_return, "XDP_TX");
        let input = f.input.as_ref().expect("input built");
        // Eth: dst (0x2) first, then src (0x1), IPv4.
        assert_eq!(
            &input[..14],
            &[2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x08, 0x00]
        );
        // IPv4: fragment field from the MF constant (0x20), protocol TCP.
        assert_eq!(&input[20..22], &[0x00, 0x20]);
        assert_eq!(input[23], 6);
        // TCP: SYN|ACK, options padded to 4 bytes (doff 6).
        assert_eq!(input[34 + 12], 6 << 4);
        assert_eq!(input[34 + 13], 0x12);
        assert_eq!(&input[54..58], &[0xb7, 4, 0x04, 0x00]);
        // The C string literal stops at its NUL.
        assert_eq!(&input[58..], b"ab");
        let out = f.expected_output.as_ref().expect("output built");
        // Short header: 0x00, the connection id, the data up to its NUL (no "\0@" suffix).
        assert_eq!(&out[14 + 40 + 8..], &[0x00, 0x41, 0x00, 0x01, b'q']);
    }
}
