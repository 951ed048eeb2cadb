//! In-process cost of judging one encounter under every measure in force: the
//! built-in measures alone, and with a CMS-shaped file loaded beside them (the
//! project's own fixture, five measures modelled on CMS's), for an office
//! visit that many measures name and an injection that few do.
//!
//! Run with `cargo bench --bench measures`; the figures are in `BENCHMARKS.md`.
//! Set `CPTD_BENCH_MEASURE_FILE` to a measure file (CMS's yearly file, say) to
//! judge under it too.

use std::hint::black_box;

use cptd::{
    codes::CodeValue,
    measures::{Claim, Diagnosis, MeasureSet, PlaceOfService, ReportedCode, Sex},
};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::date;

const FIXTURE: &str = include_str!("../tests/fixtures/measures/cms-shaped.json");
const BUILT_IN: &str = include_str!("../data/measures.json");

fn claim(codes: &[&str]) -> Claim {
    Claim {
        provider_id: "npi-1".into(),
        tin: None,
        service_date: date(2025, 3, 4),
        place_of_service: Some(PlaceOfService::parse("11").expect("place")),
        patient_age: Some(61),
        patient_sex: Some(Sex::Female),
        codes: codes
            .iter()
            .map(|code| ReportedCode {
                code: CodeValue::parse(code).expect("code"),
                modifiers: Vec::new(),
                units: 1,
            })
            .collect(),
        diagnoses: ["C50.911", "G89.3"]
            .iter()
            .map(|diagnosis| Diagnosis::parse(diagnosis).expect("diagnosis"))
            .collect(),
    }
}

fn evaluate(criterion: &mut Criterion) {
    let mut sets = vec![
        (
            "built-in",
            MeasureSet::built_in().expect("built-in measures"),
        ),
        (
            "built-in and fixture",
            MeasureSet::from_sources(&[("measures.json", BUILT_IN), ("cms-shaped.json", FIXTURE)])
                .expect("the fixture loads"),
        ),
    ];
    if let Some(file) = std::env::var_os("CPTD_BENCH_MEASURE_FILE") {
        let set = MeasureSet::load(&[file.into()], cptd::config::DEFAULT_MAX_DATA_FILE_BYTES)
            .expect("the measure file loads");
        sets.push(("built-in and the given file", set));
    }
    let visits = [
        ("office visit", claim(&["99213", "1125F", "0521F"])),
        ("injection", claim(&["64483", "1125F"])),
    ];
    let mut group = criterion.benchmark_group("evaluate");
    for (set_name, set) in &sets {
        for (visit_name, visit) in &visits {
            let name = format!(
                "{visit_name}, {set_name} ({} measures)",
                set.measures().len()
            );
            group.bench_function(name, |bencher| bencher.iter(|| set.judge(black_box(visit))));
        }
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
