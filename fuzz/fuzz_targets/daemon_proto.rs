//! Any bytes from a daemon client: the frame reader and the request decoder return a
//! message or an error, never panic and never allocate beyond the frame limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rd = data;
    while let Ok(body) = kbpf_client::proto::read_frame(&mut rd) {
        if let Ok(req) = kbpf_client::proto::decode_request(&body) {
            // What decodes re-encodes and decodes to the same request.
            let mut buf = Vec::new();
            kbpf_client::proto::write_frame(&mut buf, &req).expect("encodes");
            let back = kbpf_client::proto::read_frame(&mut &buf[..]).expect("frame");
            assert_eq!(kbpf_client::proto::decode_request(&back).expect("decodes"), req);
        }
    }
    let _ = kbpf_client::proto::decode_response(data);
});
