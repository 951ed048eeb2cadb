//! The mix of encounters the store benchmarks record, shared by
//! `benches/quality.rs` (over gRPC) and `benches/rows.rs` (in process), so
//! that both time rows of the same shape.

/// Providers the encounters are spread over.
pub const PROVIDERS: usize = 40;

/// The Category II codes, with their modifiers after a dash, that encounter
/// `index` reports beside its office visit: outcomes met, not met, excluded
/// and absent under both built-in measures, in turn.
pub fn quality_codes(index: usize) -> &'static [&'static str] {
    match index % 6 {
        0 => &["1125F", "0521F"],
        1 => &["1125F", "0521F-8P"],
        2 => &["1126F"],
        3 => &["1125F-8P"],
        4 => &["1125F", "0521F-2P"],
        _ => &[],
    }
}
