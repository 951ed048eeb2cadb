//! In-process cost of making encounters into store rows, as an import thread
//! does for each one it parses: judging under the built-in measures, hashing
//! the patient id, writing the claim's text, and copying it all into a chunk's
//! shared buffers. Neither parsing nor SQLite is timed.
//!
//! Run with `cargo bench --bench rows`; the figures are in `BENCHMARKS.md`.

mod encounter_mix;

use std::{hint::black_box, sync::Arc};

use cptd::{
    measures::{Encounter, MeasureSet},
    store::{Durability, EncounterStore, Location, StoreOptions},
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use encounter_mix::domain_encounter;

/// Encounters an import prepares together.
const CHUNK: usize = 256;

fn prepare(criterion: &mut Criterion) {
    let measures = Arc::new(MeasureSet::built_in().expect("built-in measures"));
    let store = EncounterStore::open(
        StoreOptions {
            location: Location::InMemory,
            durability: Durability::Full,
            key: None,
        },
        measures,
    )
    .expect("store opens");
    let encounters: Vec<Encounter> = (0..CHUNK)
        .map(|index| domain_encounter("row", index))
        .collect();
    let mut group = criterion.benchmark_group("rows");
    group.throughput(Throughput::Elements(CHUNK as u64));
    group.bench_function("prepare a chunk of 256", |bencher| {
        bencher.iter(|| {
            let mut preparer = store.preparer(CHUNK);
            for encounter in &encounters {
                preparer.push(black_box(encounter), false);
            }
            black_box(preparer.finish())
        })
    });
    group.finish();
}

criterion_group!(benches, prepare);
criterion_main!(benches);
