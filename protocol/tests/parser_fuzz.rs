//! A bounded fuzz test of the client frame parser, run with every `cargo test`: tens of
//! thousands of inputs made by mutating valid frames (flipped, cut, duplicated and inserted
//! bytes, JSON fragments, deep nesting, huge numbers) and by drawing random text.
//!
//! Properties: parsing never panics; a frame that parses serialises back to a frame that parses
//! to itself; a refusal is `invalid_json` exactly when the text is not JSON at all. The generator
//! is a seeded xorshift, so a failure names its seed and iteration and replays exactly.

use chorus_protocol::{ClientFrame, DecodeError};

/// A small deterministic generator: no dependency, and a failure is reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const SEEDS: &[&str] = &[
    r#"{"type":"identify","token":"abc.def.ghi"}"#,
    r#"{"type":"resume","token":"t","session_id":"00000000-0000-0000-0000-000000000001","channels":[{"channel_id":"00000000-0000-0000-0000-000000000002","last_seq":7}]}"#,
    r#"{"type":"heartbeat"}"#,
    r#"{"type":"subscribe","channel_id":"00000000-0000-0000-0000-000000000002","since_seq":3}"#,
    r#"{"type":"unsubscribe","channel_id":"00000000-0000-0000-0000-000000000002"}"#,
    r#"{"type":"send","channel_id":"00000000-0000-0000-0000-000000000002","nonce":"n1","text":"héllo 👋","parent_seq":1}"#,
    r#"{"type":"typing","channel_id":"00000000-0000-0000-0000-000000000002"}"#,
];

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "-0",
    "1e999",
    "18446744073709551616",
    "-1",
    "\"type\":\"send\"",
    "\"type\":1",
    "\u{feff}",
    "\"channel_id\":\"not-a-uuid\"",
    "\"since_seq\":-5",
    "\"nonce\":\"\"",
    "\u{0}",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(at),
            2 => {
                let fragment = rng.pick(FRAGMENTS).as_bytes();
                bytes.splice(at..at, fragment.iter().copied());
            }
            3 if !bytes.is_empty() => {
                let end = (at + rng.below(16)).min(bytes.len());
                let copy: Vec<u8> = bytes[at.min(end)..end].to_vec();
                bytes.splice(at..at, copy);
            }
            4 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {
                let depth = 1 + rng.below(300);
                let nested = "[".repeat(depth) + &"]".repeat(depth);
                bytes.splice(at..at, nested.into_bytes());
            }
        }
    }
    // Frames arrive as WebSocket text, which is UTF-8.
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_text(rng: &mut Rng) -> String {
    (0..rng.below(64))
        .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
        .collect()
}

fn check(input: &str, seed: u64, round: usize) {
    match ClientFrame::parse(input) {
        Ok(frame) => {
            let again = ClientFrame::parse(&frame.to_json())
                .unwrap_or_else(|e| panic!("seed {seed} round {round}: {input:?} re-parse: {e}"));
            assert_eq!(again, frame, "seed {seed} round {round}: {input:?}");
        }
        Err(err) => {
            let is_json = serde_json::from_str::<serde_json::Value>(input).is_ok();
            assert_eq!(
                matches!(err, DecodeError::InvalidJson(_)),
                !is_json,
                "seed {seed} round {round}: {input:?} gave {err:?}"
            );
            assert!(
                err.to_string().len() < 4096,
                "an error message is bounded whatever the input"
            );
        }
    }
}

#[test]
fn the_frame_parser_survives_mutated_and_random_input() {
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 0x2545_f491_4f6c_dd1d, 7] {
        let mut rng = Rng(seed);
        for round in 0..10_000 {
            let input = if rng.below(10) == 0 {
                random_text(&mut rng)
            } else {
                let base = rng.pick(SEEDS);
                mutate(&mut rng, base)
            };
            check(&input, seed, round);
        }
    }
    // Every seed frame itself parses.
    for seed in SEEDS {
        ClientFrame::parse(seed).unwrap();
    }
}
