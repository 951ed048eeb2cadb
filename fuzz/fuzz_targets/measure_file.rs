//! A measure file as `--measures` loads it (without the built-in ones): a
//! measure set or every problem named, never a panic.
#![no_main]

use cptd::measures::MeasureSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = MeasureSet::from_sources(&[("fuzz.json", text)]);
});
