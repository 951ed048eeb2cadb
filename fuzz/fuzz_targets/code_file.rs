//! A code-set file as `--codes` loads it: a registry or every problem named,
//! never a panic.
#![no_main]

use cptd::codes::CodeRegistry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = CodeRegistry::from_sources(&[("fuzz.csv", text)]);
});
