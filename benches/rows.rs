//! In-process cost of making encounters into store rows, as an import thread
//! does for each one it parses: judging under the built-in measures, hashing
//! the patient id, writing the claim's text, and copying it all into a chunk's
//! shared buffers. Neither parsing nor SQLite is timed.
//!
//! Run with `cargo bench --bench rows`; the figures are in `BENCHMARKS.md`.

mod encounter_mix;

use std::{hint::black_box, sync::Arc};

use cptd::{
    codes::CodeValue,
    measures::{
        Claim, Diagnosis, Encounter, MeasureSet, Modifier, PatientId, PlaceOfService, ReportedCode,
        Sex,
    },
    store::{Durability, EncounterStore, Location, StoreOptions},
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use encounter_mix::{PROVIDERS, quality_codes};
use jiff::civil::date;

/// Encounters an import prepares together.
const CHUNK: usize = 256;

/// An encounter of the shape `benches/quality.rs` imports: one of 40
/// providers, a day of 2025, and a mix of outcomes under both built-in
/// measures.
fn encounter(index: usize) -> Encounter {
    let codes = std::iter::once("99213")
        .chain(quality_codes(index).iter().copied())
        .map(|text| {
            let mut parts = text.split('-');
            ReportedCode {
                code: CodeValue::parse(parts.next().unwrap_or_default()).expect("code"),
                modifiers: parts
                    .map(|modifier| Modifier::parse(modifier).expect("modifier"))
                    .collect(),
                units: 1,
            }
        })
        .collect();
    let day = date(2025, 1, 1)
        .checked_add(jiff::Span::new().days((index % 365) as i64))
        .expect("a day of 2025");
    Encounter {
        encounter_id: format!("row-{index:08}"),
        patient_id: PatientId::parse(&format!("MRN-{:07}", index % 50_000)).expect("patient"),
        claim: Claim {
            provider_id: format!("npi-{:02}", index % PROVIDERS),
            service_date: day,
            place_of_service: Some(PlaceOfService::parse("11").expect("place")),
            patient_age: Some(40 + (index % 50) as u8),
            patient_sex: Some(
                Sex::parse(if index.is_multiple_of(2) { "F" } else { "M" }).expect("sex"),
            ),
            codes,
            diagnoses: ["C50.911", "G89.3"]
                .iter()
                .map(|text| Diagnosis::parse(text).expect("diagnosis"))
                .collect(),
        },
    }
}

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
    let encounters: Vec<Encounter> = (0..CHUNK).map(encounter).collect();
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
