//! `prog run PROG pcap_in FILE [pcap_out FILE]` (kbpf's): every packet of a classic pcap
//! capture through the program, in order, once each — what people testing a load balancer
//! exchange fixtures as. The packets the program passes on (XDP: `XDP_PASS`, `XDP_TX`,
//! `XDP_REDIRECT`; other types: anything but a drop) are written to `pcap_out` as the program
//! left them, with their input timestamps; the reply counts packets per return code. A
//! progress bar goes to stderr on long captures when stderr is a terminal.
//!
//! Where the packets run is the caller's: in this process ([`kbpf_run::run_packets`]), or in
//! the daemon, batch by batch (`prog_run_packets`), from the client — so the progress bar
//! and the files stay with the user.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};

use crate::json::Json;
use crate::session::{Reply, strerror};

/// Packets per batch handed to the runner.
pub const BATCH: usize = 4096;
/// `BPF_PROG_TYPE_XDP`.
const XDP: u32 = 6;
use kbpf_uapi::net::ETH_HLEN;

/// The name of a return value as the program type means it.
pub fn action_name(prog_type: u32, retval: u32) -> String {
    const XDP_ACTIONS: [&str; 5] = [
        "XDP_ABORTED",
        "XDP_DROP",
        "XDP_PASS",
        "XDP_TX",
        "XDP_REDIRECT",
    ];
    const TC_ACTIONS: [(i32, &str); 6] = [
        (-1, "TC_ACT_UNSPEC"),
        (0, "TC_ACT_OK"),
        (1, "TC_ACT_RECLASSIFY"),
        (2, "TC_ACT_SHOT"),
        (3, "TC_ACT_PIPE"),
        (7, "TC_ACT_REDIRECT"),
    ];
    match prog_type {
        XDP => XDP_ACTIONS
            .get(retval as usize)
            .map_or_else(|| retval.to_string(), |s| s.to_string()),
        3 => TC_ACTIONS
            .iter()
            .find(|(v, _)| *v == retval as i32)
            .map_or_else(|| retval.to_string(), |(_, s)| s.to_string()),
        _ => retval.to_string(),
    }
}

/// Whether the program passed the packet on.
fn forwarded(prog_type: u32, retval: u32) -> bool {
    match prog_type {
        XDP => matches!(retval, 2..=4),
        // sched_cls: TC_ACT_SHOT drops; a socket filter: 0 bytes kept.
        3 => retval != 2,
        _ => retval != 0,
    }
}

/// What a capture run gives back.
#[derive(Debug, Default)]
pub struct Summary {
    /// Packets run.
    pub packets: u64,
    /// Packets per return value.
    pub counts: BTreeMap<u32, u64>,
    /// Packets written to `pcap_out`.
    pub written: u64,
    /// Packets not run: shorter than an Ethernet header, which `BPF_PROG_TEST_RUN` refuses
    /// (EINVAL) for every packet program type.
    pub refused: u64,
    /// Wall time of the whole run, ns.
    pub elapsed_ns: u64,
}

/// Runs every packet of `input` through `run_batch` (packets in, `(retval, data_out)` per
/// packet out), writing what the program passes on to `output`.
pub fn run_capture(
    prog_type: u32,
    input: &Path,
    output: Option<&Path>,
    mut run_batch: impl FnMut(&[Vec<u8>]) -> Result<Vec<(u32, Vec<u8>)>, Reply>,
) -> Result<Summary, Reply> {
    let open_err = |p: &Path, e: &std::io::Error| {
        Reply::err(
            format!("failed to open {}: {}", p.display(), strerror(e)),
            -1,
        )
    };
    let file = std::fs::File::open(input).map_err(|e| open_err(input, &e))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = PcapReader::new(std::io::BufReader::new(file)).map_err(|e| {
        Reply::err(
            format!("{}: not a classic pcap capture: {e}", input.display()),
            -22,
        )
    })?;
    let mut writer = match output {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(|e| open_err(p, &e))?;
            Some(
                PcapWriter::with_header(std::io::BufWriter::new(f), reader.header())
                    .map_err(|e| Reply::err(format!("{}: {e}", p.display()), -1))?,
            )
        }
        None => None,
    };
    let bar = (std::io::stderr().is_terminal() && total > 16 << 20).then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:>12} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message("packets");
        b
    });
    let start = Instant::now();
    let mut s = Summary::default();
    let mut read_bytes = 0u64;
    loop {
        let mut stamps = Vec::with_capacity(BATCH);
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            match reader.next_packet() {
                Some(Ok(p)) if p.data.len() < ETH_HLEN => {
                    read_bytes += 16 + p.data.len() as u64;
                    s.packets += 1;
                    s.refused += 1;
                }
                Some(Ok(p)) => {
                    read_bytes += 16 + p.data.len() as u64;
                    stamps.push((p.timestamp, p.orig_len, p.data.len()));
                    batch.push(p.data.into_owned());
                }
                Some(Err(e)) => {
                    return Err(Reply::err(
                        format!(
                            "{}: packet {}: {e}",
                            input.display(),
                            s.packets + batch.len() as u64 + 1
                        ),
                        -22,
                    ));
                }
                None => break,
            }
        }
        if batch.is_empty() {
            break;
        }
        let results = run_batch(&batch)?;
        for ((retval, data), (ts, orig_len, caplen)) in results.into_iter().zip(stamps) {
            s.packets += 1;
            *s.counts.entry(retval).or_default() += 1;
            if let Some(w) = writer.as_mut()
                && forwarded(prog_type, retval)
            {
                // A packet the program grew or shrank keeps the input's truncation.
                let orig = (orig_len as usize).saturating_sub(caplen) + data.len();
                w.write_packet(&PcapPacket::new(ts, orig as u32, &data))
                    .map_err(|e| Reply::err(format!("writing pcap_out: {e}"), -1))?;
                s.written += 1;
            }
        }
        if let Some(b) = &bar {
            b.set_position(read_bytes);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(w) = writer {
        std::io::Write::flush(&mut w.into_writer())
            .map_err(|e| Reply::err(format!("writing pcap_out: {}", strerror(&e)), -1))?;
    }
    s.elapsed_ns = start.elapsed().as_nanos() as u64;
    Ok(s)
}

/// The reply: `Packets: N` and the count per return code (plain), or one JSON object.
pub fn reply(prog_type: u32, s: &Summary) -> Reply {
    let per = s.elapsed_ns.checked_div(s.packets).unwrap_or(0);
    let mut text = format!(
        "Packets: {}, written: {}, duration (average): {per}ns\n",
        s.packets, s.written
    );
    if s.refused > 0 {
        text.push_str(&format!(
            "\trefused (shorter than an Ethernet header): {}\n",
            s.refused
        ));
    }
    let counts: Vec<String> = s
        .counts
        .iter()
        .map(|(r, n)| format!("{} {n}", action_name(prog_type, *r)))
        .collect();
    text.push_str(&format!("\t{}\n", counts.join("  ")));
    let json = Json::obj([
        ("packets", Json::U(s.packets)),
        ("written", Json::U(s.written)),
        ("refused", Json::U(s.refused)),
        ("duration", Json::U(per)),
        (
            "retvals",
            Json::A(
                s.counts
                    .iter()
                    .map(|(r, n)| {
                        Json::obj([
                            ("retval", Json::U(u64::from(*r))),
                            ("action", Json::s(action_name(prog_type, *r))),
                            ("packets", Json::U(*n)),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]);
    Reply::ok(text, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(path: &Path, packets: &[Vec<u8>]) {
        let f = std::fs::File::create(path).unwrap();
        let mut w = PcapWriter::new(f).unwrap();
        for (i, p) in packets.iter().enumerate() {
            w.write_packet(&PcapPacket::new(
                std::time::Duration::from_micros(i as u64),
                p.len() as u32,
                p,
            ))
            .unwrap();
        }
    }

    #[test]
    fn captures_run_in_order_and_forwarded_packets_are_written() {
        let dir = std::env::temp_dir().join(format!("kbpf-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (inp, out) = (dir.join("in.pcap"), dir.join("out.pcap"));
        // 10,000 packets (three batches): the runner drops odd lengths, passes the rest with
        // their first byte set.
        let mut pkts: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| vec![0u8; 60 + (i % 7) as usize])
            .collect();
        pkts.push(vec![1u8; 5]);
        capture(&inp, &pkts);
        let s = run_capture(XDP, &inp, Some(&out), |b| {
            Ok(b.iter()
                .map(|p| {
                    let mut o = p.clone();
                    o[0] = 0xee;
                    (if p.len() % 2 == 1 { 1 } else { 2 }, o)
                })
                .collect())
        })
        .unwrap();
        assert_eq!(s.packets, 10_001);
        assert_eq!(s.refused, 1, "a 5-byte packet is refused, not run");
        let evens = pkts.iter().filter(|p| p.len() % 2 == 0).count() as u64;
        assert_eq!(s.counts.get(&2), Some(&evens));
        assert_eq!(s.counts.get(&1), Some(&(10_000 - evens)));
        assert_eq!(s.counts.values().sum::<u64>(), 10_000);
        assert_eq!(s.written, evens);
        let mut r = PcapReader::new(std::fs::File::open(&out).unwrap()).unwrap();
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            assert_eq!(p.data[0], 0xee);
            assert_eq!(p.data.len() % 2, 0);
            n += 1;
        }
        assert_eq!(n, evens);
        let text = reply(XDP, &s).stdout;
        assert!(
            text.contains("XDP_DROP") && text.contains("XDP_PASS"),
            "{text}"
        );
        // Not a capture: an error, not a panic.
        std::fs::write(&inp, b"not a pcap").unwrap();
        let e = run_capture(XDP, &inp, None, |_| Ok(Vec::new())).unwrap_err();
        assert!(e.stderr.contains("not a classic pcap"), "{}", e.stderr);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
