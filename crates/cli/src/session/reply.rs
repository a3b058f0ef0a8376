//! [`Reply`]: what one command prints (stdout and stderr, the JSON form) and returns, the
//! way bpftool prints it. Every command of every object returns one; it is the session's
//! because the session's own operations (loading the state, pinning, committing) fail with
//! bpftool's messages too.

use crate::json::Json;
use crate::words::GrammarError;

/// What one command prints and returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// Plain-text stdout.
    pub stdout: String,
    /// Plain-text stderr (`Error: …`, usage after a bad command).
    pub stderr: String,
    /// The JSON output (printed instead of both texts under `-j`).
    pub json: Json,
    /// bpftool's return value: 0, −1, or −errno; the exit status is its low byte.
    pub status: i32,
}

impl Reply {
    /// Success with text and JSON output.
    pub fn ok(stdout: impl Into<String>, json: Json) -> Reply {
        Reply {
            stdout: stdout.into(),
            stderr: String::new(),
            json,
            status: 0,
        }
    }

    /// bpftool's `p_err`: `Error: MESSAGE` on stderr, `{"error": MESSAGE}` in JSON.
    pub fn err(message: impl Into<String>, status: i32) -> Reply {
        let m = message.into();
        Reply {
            stdout: String::new(),
            stderr: format!("Error: {m}\n"),
            json: Json::obj([("error", Json::S(m))]),
            status,
        }
    }

    /// A failure that prints nothing (bpftool's `name` handle matching no map).
    pub fn silent(status: i32) -> Reply {
        Reply {
            stdout: String::new(),
            stderr: String::new(),
            json: Json::Null,
            status,
        }
    }

    /// An unknown command: the usage on stderr, `null` in JSON, status −1.
    pub fn usage(text: &str) -> Reply {
        Reply {
            stdout: String::new(),
            stderr: text.to_string(),
            json: Json::Null,
            status: -1,
        }
    }

    /// The process exit status bpftool would have (`return ret` of a negative int).
    pub fn exit_code(&self) -> u8 {
        (self.status & 0xff) as u8
    }

    /// A `show` command's output: under `-j` one object when a single handle was named, an
    /// array otherwise (bpftool's `show` with and without an argument).
    pub fn shown(text: String, mut objects: Vec<Json>, single: bool) -> Reply {
        let json = if single {
            objects.pop().unwrap_or(Json::Null)
        } else {
            Json::A(objects)
        };
        Reply::ok(text, json)
    }
}

impl From<GrammarError> for Reply {
    fn from(e: GrammarError) -> Reply {
        Reply::err(e.message, e.status)
    }
}

impl Reply {
    /// Prints the reply the way bpftool does: the JSON document under `-j` (`pretty`: `-p`),
    /// else stdout then stderr.
    pub fn print(&self, json: bool, pretty: bool) {
        use std::io::Write;
        if json {
            let _ = std::io::stdout().write_all(self.json.to_document(pretty).as_bytes());
        } else {
            let _ = std::io::stdout().write_all(self.stdout.as_bytes());
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().write_all(self.stderr.as_bytes());
        }
    }
}

/// `strerror` text of an I/O error (without Rust's "(os error N)" suffix).
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error().and_then(kbpf_maps::Errno::from_code) {
        Some(errno) => errno.description().to_string(),
        None => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_low_byte() {
        assert_eq!(Reply::err("x", -1).exit_code(), 255);
        assert_eq!(Reply::err("x", -22).exit_code(), 234);
        assert_eq!(Reply::err("x", -2).exit_code(), 254);
        assert_eq!(Reply::ok("", Json::Null).exit_code(), 0);
    }
}
