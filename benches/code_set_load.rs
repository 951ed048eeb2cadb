//! Loading a practice-sized code set: time to build a registry from 20,000 and
//! 200,000 CSV rows against the time to merely parse the same CSV with the `csv`
//! crate, and the memory the registry keeps per code beyond its text.
//!
//! Run: `cargo bench --bench code_set_load`. Memory figures are printed before
//! the timings: the heap bytes the registry keeps (counted by a global allocator
//! that tallies live allocations), and for comparison the growth of the resident
//! set, which also holds memory freed during the build but not returned to the
//! system.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

/// Counts live heap bytes, so the bench can tell what a registry keeps.
struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter
// only observes sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `pointer` came from `alloc` above with the same layout.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

use cptd::codes::CodeRegistry;
use criterion::{Criterion, criterion_group, criterion_main};

const VERBS: [&str; 8] = [
    "Injection of",
    "Destruction by neurolytic agent of",
    "Aspiration and injection of",
    "Percutaneous placement of electrodes near",
    "Radiofrequency ablation of",
    "Chemodenervation of",
    "Imaging-guided block of",
    "Removal or revision of a device near",
];
const TARGETS: [&str; 10] = [
    "the lumbar facet joint nerves",
    "the cervical epidural space",
    "a major joint such as the knee or shoulder",
    "the sacroiliac joint",
    "the genicular nerves of the knee",
    "the greater occipital nerve",
    "the stellate ganglion",
    "the thoracic paravertebral space",
    "one or two trigger-point muscles",
    "the basivertebral nerve of a vertebral body",
];
const DETAILS: [&str; 8] = [
    "at a single level",
    "at each additional level, listed separately",
    "with fluoroscopic or CT guidance included",
    "with ultrasound guidance and images recorded",
    "on one side",
    "on both sides",
    "by continuous infusion through a catheter",
    "including any imaging performed",
];
const ANATOMY: [&str; 6] = [
    "lumbar spine",
    "cervical spine",
    "major joint",
    "sacroiliac joint",
    "peripheral nerve",
    "thoracic wall",
];

/// The `index`-th code of a synthetic set: five-digit codes first, then the
/// Category II, Category III and HCPCS forms.
fn synthetic_code(index: usize) -> String {
    match index {
        0..100_000 => format!("{index:05}"),
        100_000..110_000 => format!("{:04}F", index - 100_000),
        110_000..120_000 => format!("{:04}T", index - 110_000),
        _ => {
            let rest = index - 120_000;
            let letter = (b'A' + (rest / 10_000) as u8) as char;
            format!("{letter}{:04}", rest % 10_000)
        }
    }
}

/// A CSV of `rows` codes whose descriptors read like real ones.
fn synthetic_csv(rows: usize) -> String {
    let mut csv = String::from(
        "code,descriptor,short_name,section,subsection,heading,anatomy,imaging,synonyms\n",
    );
    for index in 0..rows {
        let verb = VERBS[index % VERBS.len()];
        let target = TARGETS[(index / 7) % TARGETS.len()];
        let detail = DETAILS[(index / 3) % DETAILS.len()];
        let anatomy = ANATOMY[index % ANATOMY.len()];
        csv.push_str(&format!(
            "{},\"{verb} {target}, {detail}, variant {index}.\",Synthetic code {index},Surgery,Nervous System,Heading {},{anatomy},any,synthetic {index}|code {}\n",
            synthetic_code(index),
            index % 97,
            index % 13,
        ));
    }
    csv
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn text_bytes(registry: &CodeRegistry) -> u64 {
    registry
        .histories()
        .iter()
        .flat_map(|history| history.versions())
        .map(|version| {
            let texts = [
                &version.descriptor,
                &version.short_name,
                &version.section,
                &version.subsection,
                &version.heading,
                &version.anatomy,
            ];
            let synonyms: usize = version.synonyms.iter().map(|synonym| synonym.len()).sum();
            (texts.iter().map(|text| text.len()).sum::<usize>() + synonyms) as u64
        })
        .sum()
}

fn report_memory(rows: usize, csv: &str) {
    let resident_before = resident_bytes();
    let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
    let registry =
        CodeRegistry::from_sources(&[("synthetic.csv", csv)]).expect("synthetic set loads");
    let heap_kept = LIVE_BYTES
        .load(Ordering::Relaxed)
        .saturating_sub(heap_before) as u64;
    let resident_growth = resident_bytes().saturating_sub(resident_before);
    let text = text_bytes(&registry);
    let codes = registry.len() as f64;
    let beyond_text = |bytes: u64| bytes.saturating_sub(text) as f64 / codes;
    println!(
        "memory {rows} rows: text {:.1} MiB; heap kept {:.1} MiB, {:.0} bytes per code beyond the text; \
         resident growth {:.1} MiB, {:.0} bytes per code beyond the text",
        text as f64 / MIB,
        heap_kept as f64 / MIB,
        beyond_text(heap_kept),
        resident_growth as f64 / MIB,
        beyond_text(resident_growth),
    );
    black_box(registry);
}

const MIB: f64 = 1024.0 * 1024.0;

fn load(criterion: &mut Criterion) {
    for rows in [20_000, 200_000] {
        let csv = synthetic_csv(rows);
        report_memory(rows, &csv);
        let mut group = criterion.benchmark_group(format!("code_set_{rows}_rows"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));
        group.bench_function("csv_parse_only", |bench| {
            bench.iter(|| {
                let mut reader = csv::Reader::from_reader(csv.as_bytes());
                let mut fields = 0usize;
                for record in reader.records() {
                    fields += record.expect("synthetic csv parses").len();
                }
                black_box(fields)
            })
        });
        group.bench_function("registry_build", |bench| {
            bench.iter(|| CodeRegistry::from_sources(&[("synthetic.csv", &csv)]).expect("loads"))
        });
        group.finish();
    }
}

criterion_group!(benches, load);
criterion_main!(benches);
