//! How the process's allocator is set up for a server that builds big
//! registries.
//!
//! A code-set build allocates several times what the registry keeps: rows as
//! read, word lists and postings before they are packed. glibc serves blocks
//! of 128 KiB or more with their own mappings, which go back to the system when
//! freed, but it raises that threshold each time such a block is freed, up to
//! 32 MiB. After the first large free, the build's big scratch buffers come from
//! the heap instead, are freed among the blocks the registry keeps, and stay
//! resident: about 1.3 KiB per code at 200,000 codes against 0.7 KiB with the
//! threshold held at 1 MiB (`cargo bench --bench code_set_load`, BENCHMARKS.md).
//! The price is fresh mappings for big buffers: a 200,000-code build took
//! 1.3 to 1.6 s with the threshold held against about 1.3 s without.

/// Blocks at least this large get mappings of their own, returned when freed.
pub const OWN_MAPPING_THRESHOLD_BYTES: usize = 1024 * 1024;

/// Fixes the allocator's own-mapping threshold at
/// [`OWN_MAPPING_THRESHOLD_BYTES`]. Call first thing in `main`. Elsewhere than
/// glibc this does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes a tuning parameter of the allocator, under
    // the allocator's own lock; no allocation is touched.
    unsafe {
        libc::mallopt(
            libc::M_MMAP_THRESHOLD,
            OWN_MAPPING_THRESHOLD_BYTES as libc::c_int,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_on_either_side_of_the_threshold_are_usable_after_tuning() {
        tune_allocator();
        for size in [
            16,
            OWN_MAPPING_THRESHOLD_BYTES - 1,
            OWN_MAPPING_THRESHOLD_BYTES,
            4 * OWN_MAPPING_THRESHOLD_BYTES,
        ] {
            let mut block = vec![0u8; size];
            block[size - 1] = 7;
            block.truncate(size / 2);
            block.shrink_to_fit();
            block.resize(size, 9);
            assert_eq!(block[size - 1], 9);
        }
    }
}
