//! The control plane as a line protocol: one command per line in, one answer per line out.
//! It is how a deployment script, a test or an operator drives a running load balancer
//! from its own process (`kbpf maglev ctl`), without a library call:
//!
//! ```text
//! service ADDR BACKEND...     add a service      → ok service ID
//! add ADDR BACKEND            add a backend      → ok backend ID
//! drain ADDR BACKEND          no new flows       → ok
//! remove ADDR BACKEND         remove a backend   → ok
//! pick ADDR SADDR SPORT       the backend the table gives a new flow → ok BACKEND
//! show                        services, backends, table sizes, swaps → ok {json}
//! quit
//! ```
//! `ADDR` is `VIP:PORT/tcp` or `VIP:PORT/udp` (`[v6]:PORT/…` for IPv6); `BACKEND` is an
//! address, optionally `:PORT` (default: keep the service port). Errors answer
//! `error MESSAGE` and change nothing.

use std::io::{BufRead, Write};
use std::net::IpAddr;

use super::{BackendSpec, LoadBalancer, MapOps, ServiceAddr, ServiceId};
use crate::hash::{flow_hash_v4, flow_hash_v6};

/// Parses `VIP:PORT/tcp|udp`.
pub fn parse_service(s: &str) -> Result<ServiceAddr, String> {
    let (addr, proto) = s
        .rsplit_once('/')
        .ok_or_else(|| format!("{s}: expected VIP:PORT/tcp or /udp"))?;
    let protocol = match proto {
        "tcp" => 6,
        "udp" => 17,
        _ => return Err(format!("{s}: protocol must be tcp or udp")),
    };
    let sa: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| format!("{addr}: {e} (expected VIP:PORT)"))?;
    Ok(ServiceAddr {
        vip: sa.ip(),
        port: sa.port(),
        protocol,
    })
}

/// Parses `ADDR[:PORT]` (`[v6]:PORT` with a port).
pub fn parse_backend(s: &str) -> Result<BackendSpec, String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(BackendSpec::new(ip, 0));
    }
    let sa: std::net::SocketAddr = s
        .parse()
        .map_err(|e| format!("{s}: {e} (expected ADDR or ADDR:PORT)"))?;
    Ok(BackendSpec::new(sa.ip(), sa.port()))
}

fn service_of<O: MapOps>(lb: &LoadBalancer<O>, word: Option<&str>) -> Result<ServiceId, String> {
    let addr = parse_service(word.ok_or("missing service address")?)?;
    lb.service_id(&addr)
        .ok_or_else(|| format!("no service {addr}"))
}

/// Runs one command line; `Ok(None)` for `quit`.
pub fn run_line<O: MapOps>(lb: &mut LoadBalancer<O>, line: &str) -> Result<Option<String>, String> {
    let mut w = line.split_whitespace();
    let Some(cmd) = w.next() else {
        return Ok(Some(String::new()));
    };
    match cmd {
        "quit" | "exit" => Ok(None),
        "service" => {
            let addr = parse_service(w.next().ok_or("missing service address")?)?;
            let backends = w.map(parse_backend).collect::<Result<Vec<_>, _>>()?;
            let id = lb.add_service(addr, &backends).map_err(|e| e.to_string())?;
            Ok(Some(format!("service {id}")))
        }
        "add" => {
            let id = service_of(lb, w.next())?;
            let b = parse_backend(w.next().ok_or("missing backend")?)?;
            let bid = lb.add_backend(id, b).map_err(|e| e.to_string())?;
            Ok(Some(format!("backend {bid}")))
        }
        "drain" | "remove" => {
            let id = service_of(lb, w.next())?;
            let b = parse_backend(w.next().ok_or("missing backend")?)?;
            let r = if cmd == "drain" {
                lb.drain_backend(id, b.addr, b.port)
            } else {
                lb.remove_backend(id, b.addr, b.port)
            };
            r.map_err(|e| e.to_string())?;
            Ok(Some(String::new()))
        }
        "pick" => {
            let id = service_of(lb, w.next())?;
            let saddr: IpAddr = w
                .next()
                .ok_or("missing source address")?
                .parse()
                .map_err(|e| format!("source address: {e}"))?;
            let sport: u16 = w
                .next()
                .ok_or("missing source port")?
                .parse()
                .map_err(|e| format!("source port: {e}"))?;
            let svc = lb.service(id).ok_or("service vanished")?;
            let seed = lb.config().flow_seed;
            let hash = match saddr {
                IpAddr::V4(a) => {
                    flow_hash_v4(a.octets(), sport, svc.addr.port, svc.addr.protocol, seed)
                }
                IpAddr::V6(a) => {
                    flow_hash_v6(a.octets(), sport, svc.addr.port, svc.addr.protocol, seed)
                }
            };
            let b = svc.pick(hash).ok_or("the service has no backend")?;
            Ok(Some(b.spec.addr.to_string()))
        }
        "show" => {
            let mut services: Vec<_> = lb
                .services()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id,
                        "addr": s.addr.to_string(),
                        "table_size": s.packed.header().table_size,
                        "max_entries": s.packed.max_entries(),
                        "generation": s.generation,
                        "backends": s.backends.iter().map(|b| serde_json::json!({
                            "addr": b.spec.addr.to_string(),
                            "port": b.spec.port,
                            "id": b.id,
                            "drained": b.drained,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            services.sort_by_key(|s| s["id"].as_u64());
            Ok(Some(
                serde_json::json!({"services": services, "swaps": lb.swaps()}).to_string(),
            ))
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

/// Serves `input` line by line until `quit` or its end, answering each on `output`
/// (`ok …` / `error …`, flushed at once).
pub fn serve_lines<O: MapOps>(
    lb: &mut LoadBalancer<O>,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        let answer = match run_line(lb, &line) {
            Ok(None) => {
                writeln!(output, "ok")?;
                output.flush()?;
                return Ok(());
            }
            Ok(Some(s)) if s.is_empty() => "ok".to_string(),
            Ok(Some(s)) => format!("ok {s}"),
            Err(e) => format!("error {}", e.replace('\n', " ")),
        };
        writeln!(output, "{answer}")?;
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::LbConfig;
    use crate::control::tests::kbpf_lb;

    #[test]
    fn a_session_of_commands() {
        let mut lb = kbpf_lb(LbConfig::default());
        let input = "service 10.200.100.1:80/tcp 10.200.0.11 10.200.0.12 10.200.0.13\n\
                     pick 10.200.100.1:80/tcp 10.200.1.2 40000\n\
                     add 10.200.100.1:80/tcp 10.200.0.14\n\
                     add 10.200.100.1:80/tcp 10.200.0.14\n\
                     drain 10.200.100.1:80/tcp 10.200.0.14\n\
                     remove 10.200.100.1:80/tcp 10.200.0.14\n\
                     remove 10.200.100.1:80/tcp 10.200.0.99\n\
                     service 10.200.100.1:80/sctp 10.0.0.1\n\
                     frobnicate\n\
                     show\n\
                     quit\n\
                     service 10.200.100.2:80/tcp 10.200.0.11\n";
        let mut out = Vec::new();
        serve_lines(&mut lb, input.as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ok service 1");
        let picked: IpAddr = lines[1].strip_prefix("ok ").unwrap().parse().unwrap();
        let s = lb.service(1).unwrap();
        let hash = flow_hash_v4([10, 200, 1, 2], 40000, 80, 6, lb.config().flow_seed);
        assert_eq!(s.pick(hash).unwrap().spec.addr, picked);
        assert!(lines[2].starts_with("ok backend "));
        assert!(lines[3].starts_with("error "), "{}", lines[3]);
        assert_eq!(lines[4], "ok");
        assert_eq!(lines[5], "ok");
        assert!(lines[6].starts_with("error "));
        assert!(lines[7].starts_with("error ") && lines[7].contains("tcp or udp"));
        assert!(lines[8].starts_with("error unknown command"));
        let shown: serde_json::Value =
            serde_json::from_str(lines[9].strip_prefix("ok ").unwrap()).unwrap();
        assert_eq!(
            shown["services"][0]["backends"].as_array().unwrap().len(),
            3
        );
        // add, drain and remove each swapped a table in (after the first install).
        assert!(shown["swaps"].as_u64().unwrap() >= 4);
        assert_eq!(lines[10], "ok");
        // Nothing after quit ran.
        assert_eq!(lines.len(), 11);
        assert!(
            lb.service_id(&parse_service("10.200.100.2:80/tcp").unwrap())
                .is_none()
        );
    }

    #[test]
    fn addresses_parse_like_socket_addresses() {
        let s = parse_service("[fd00::1]:443/udp").unwrap();
        assert_eq!((s.port, s.protocol), (443, 17));
        assert!(parse_service("10.0.0.1/tcp").is_err());
        assert_eq!(parse_backend("10.0.0.2").unwrap().port, 0);
        assert_eq!(parse_backend("10.0.0.2:8080").unwrap().port, 8080);
        assert!(parse_backend("nope").is_err());
    }
}
