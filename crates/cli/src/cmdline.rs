//! A bpftool-style command line (`kbpf [OPTIONS] OBJECT COMMAND …`): the global options and
//! the command words, parsed the way bpftool's `getopt_long` does. Parsed by
//! [`crate::bpftool::main`], then run in the process, forwarded to the daemon
//! ([`crate::client`]) or, for `kbpf daemon …`, handed to [`crate::daemon`]: it sits below
//! all three so that none of them needs another for its type.

use std::path::PathBuf;

use crate::words::GrammarError;

/// Global options and the command words of a bpftool-style command line, parsed the way
/// bpftool's `getopt_long` does (options anywhere before `--`, short flags combined).
#[derive(Debug, PartialEq)]
pub struct CommandLine {
    /// `--bpffs DIR`.
    pub bpffs: Option<PathBuf>,
    /// `-j`.
    pub json: bool,
    /// `-p`.
    pub pretty: bool,
    /// `-d`.
    pub debug: bool,
    /// `--kernel WHICH`.
    pub kernel: Option<String>,
    /// `--kernel-btf FILE`.
    pub kernel_btf: Option<String>,
    /// `-B FILE`/`--base-btf FILE`: the base of split BTF for `btf dump file`.
    pub base_btf: Option<String>,
    /// `-h`.
    pub help: bool,
    /// `-V`.
    pub version: bool,
    /// The words: `OBJECT COMMAND …`.
    pub words: Vec<String>,
}

/// Parses `args` (without the program name). Errors are bpftool's messages.
pub fn parse_command_line(args: &[String]) -> Result<CommandLine, GrammarError> {
    let mut cl = CommandLine {
        bpffs: None,
        json: false,
        pretty: false,
        debug: false,
        kernel: None,
        kernel_btf: None,
        base_btf: None,
        help: false,
        version: false,
        words: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            cl.words.extend(it.by_ref().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match name {
                "json" => cl.json = true,
                "pretty" => cl.pretty = true,
                "debug" => cl.debug = true,
                "help" => cl.help = true,
                "version" => cl.version = true,
                // `prog run … --engine interp|jit`: a command word, kept in place.
                "engine" => {
                    cl.words.push("--engine".into());
                    match inline {
                        Some(v) => cl.words.push(v),
                        None => cl.words.extend(it.next().cloned()),
                    }
                }
                "bpffs" | "kernel" | "kernel-btf" | "base-btf" => {
                    let v = match inline {
                        Some(v) => v,
                        None => it.next().cloned().ok_or_else(|| {
                            GrammarError::new(format!("option '--{name}' requires an argument"))
                        })?,
                    };
                    match name {
                        "bpffs" => cl.bpffs = Some(PathBuf::from(v)),
                        "kernel" => cl.kernel = Some(v),
                        "base-btf" => cl.base_btf = Some(v),
                        _ => cl.kernel_btf = Some(v),
                    }
                }
                _ => return Err(GrammarError::new(format!("unrecognized option '{a}'"))),
            }
        } else if a.len() > 1 && a.starts_with('-') {
            for (i, c) in a[1..].char_indices() {
                match c {
                    // getopt's `B:`: the rest of the word, else the next one.
                    'B' => {
                        let rest = &a[2 + i..];
                        cl.base_btf = Some(if rest.is_empty() {
                            it.next().cloned().ok_or_else(|| {
                                GrammarError::new("option requires an argument -- 'B'")
                            })?
                        } else {
                            rest.to_string()
                        });
                        break;
                    }
                    'j' => cl.json = true,
                    'p' => cl.pretty = true,
                    'd' => cl.debug = true,
                    'h' => cl.help = true,
                    'V' => cl.version = true,
                    _ => return Err(GrammarError::new(format!("invalid option -- '{c}'"))),
                }
            }
        } else {
            cl.words.push(a.clone());
        }
    }
    if cl.pretty {
        cl.json = true;
    }
    Ok(cl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_anywhere() {
        let cl =
            parse_command_line(&v("map show -j --bpffs /tmp/x pinned /sys/fs/bpf/a -p")).unwrap();
        assert!(cl.json && cl.pretty && !cl.debug);
        assert_eq!(cl.bpffs, Some(PathBuf::from("/tmp/x")));
        assert_eq!(cl.words, v("map show pinned /sys/fs/bpf/a"));
        let cl = parse_command_line(&v("-jd --bpffs=/d map")).unwrap();
        assert!(cl.json && cl.debug && !cl.pretty);
        assert_eq!(cl.bpffs, Some(PathBuf::from("/d")));
        let cl = parse_command_line(&v("map update -- -1")).unwrap();
        assert_eq!(cl.words, v("map update -1"));
        assert!(parse_command_line(&v("map -x")).is_err());
        assert!(parse_command_line(&v("--bpffs")).is_err());
    }
}
