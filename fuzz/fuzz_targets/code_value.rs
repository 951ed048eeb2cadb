//! `CodeValue::parse` on any text: a code or a clear refusal, never a panic,
//! and a parsed code parses again to itself.
#![no_main]

use cptd::codes::CodeValue;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(code) = CodeValue::parse(text) {
        let again = CodeValue::parse(&code.to_string());
        assert_eq!(again.ok(), Some(code), "a parsed code parses to itself");
    }
});
