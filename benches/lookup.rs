//! In-process cost of the code questions, without gRPC: parsing a code, looking
//! it up, validating it, searching, and the work a `GetCode` call adds around the
//! look-up (today's date, conversion to the protobuf message, encoding).
//!
//! Run with `cargo bench --bench lookup`; the figures are in `BENCHMARKS.md`.

use std::{hint::black_box, time::Duration};

use cptd::{
    codes::{CodeFilter, CodeRegistry, CodeValue, SearchQuery},
    pb,
};
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::date;
use prost::Message;

fn lookup(criterion: &mut Criterion) {
    let registry = CodeRegistry::built_in().expect("the built-in code set loads");
    let as_of = date(2025, 6, 1);
    let hit = CodeValue::parse("64483").expect("64483 is well-formed");
    let miss = CodeValue::parse("99999").expect("99999 is well-formed");

    let mut group = criterion.benchmark_group("lookup");
    group.bench_function("parse 0521f", |bencher| {
        bencher.iter(|| CodeValue::parse(black_box(" 0521f ")))
    });
    group.bench_function("get hit 64483", |bencher| {
        bencher.iter(|| registry.get(black_box(hit), black_box(as_of)).is_ok())
    });
    group.bench_function("get miss 99999", |bencher| {
        bencher.iter(|| registry.get(black_box(miss), black_box(as_of)).is_err())
    });
    group.bench_function("validate 64483", |bencher| {
        bencher.iter(|| registry.validate(black_box("64483"), black_box(as_of)))
    });
    group.bench_function("validate deleted 22520", |bencher| {
        bencher.iter(|| registry.validate(black_box("22520"), black_box(as_of)))
    });
    let today = || jiff::ZonedDateTime::now().date();
    group.bench_function("today", |bencher| bencher.iter(today));
    // What the GetCode handler does besides gRPC itself: default date, parse,
    // look up, convert, encode.
    group.bench_function("get_code path 64483", |bencher| {
        bencher.iter(|| {
            let as_of = today();
            let code = CodeValue::parse(black_box("64483")).expect("well-formed");
            let found = registry.get(code, as_of).expect("known");
            pb::Code::from(found).encode_to_vec()
        })
    });
    group.finish();

    let filter = CodeFilter::default();
    let mut group = criterion.benchmark_group("search");
    for text in ["6449", "tfesi lumbar", "kypho", "epidrual steroid"] {
        group.bench_function(text, |bencher| {
            bencher.iter(|| {
                registry
                    .search(&SearchQuery {
                        text: black_box(text),
                        filter: &filter,
                        as_of,
                    })
                    .len()
            })
        });
    }
    group.finish();

    // Startup cost, milliseconds per run: few samples keep the bench short.
    let mut group = criterion.benchmark_group("registry");
    group.sample_size(10);
    group.bench_function("built_in", |bencher| bencher.iter(CodeRegistry::built_in));
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs and no plots (drawing them takes longer than measuring): the
    // whole bench finishes in under a minute.
    config = Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = lookup
}
criterion_main!(benches);
