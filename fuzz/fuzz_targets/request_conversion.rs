//! Any bytes as a request of any method (the first byte picks it), decoded
//! and converted as the services convert it: a value or INVALID_ARGUMENT,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cptd::convert_request(data);
});
