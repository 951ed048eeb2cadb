//! Loading a practice-sized code set: time to build a registry from 20,000 and
//! 200,000 CSV rows against the time to merely parse the same CSV with the `csv`
//! crate, and the memory the registry keeps per code beyond its text.
//!
//! Run: `cargo bench --bench code_set_load`. Memory figures are printed before
//! the timings, each size measured in a fresh copy of this bench: the heap bytes
//! the registry keeps (counted by a global allocator that tallies live
//! allocations) and the growth of the resident set, which also holds memory the
//! build freed but the allocator kept, and what any first build costs once. The
//! last memory line is the cost of each further code: the difference between the
//! two sizes, per code added.

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

/// Set in the child processes that measure memory, to the number of rows.
const MEMORY_ROWS_VARIABLE: &str = "CPTD_BENCH_MEMORY_ROWS";

/// What one registry build kept, in bytes.
#[derive(Debug, Clone, Copy)]
struct MemoryFigures {
    codes: u64,
    text: u64,
    heap_kept: u64,
    resident_growth: u64,
}

impl MemoryFigures {
    fn beyond_text_per_code(&self, bytes: u64) -> f64 {
        bytes.saturating_sub(self.text) as f64 / self.codes as f64
    }
}

/// Builds a registry of `rows` in this process and measures what it kept.
fn measure_memory(rows: usize) -> MemoryFigures {
    let csv = synthetic_csv(rows);
    let resident_before = resident_bytes();
    let heap_before = LIVE_BYTES.load(Ordering::Relaxed);
    let registry =
        CodeRegistry::from_sources(&[("synthetic.csv", &csv)]).expect("synthetic set loads");
    let figures = MemoryFigures {
        codes: registry.len() as u64,
        text: text_bytes(&registry),
        heap_kept: LIVE_BYTES
            .load(Ordering::Relaxed)
            .saturating_sub(heap_before) as u64,
        resident_growth: resident_bytes().saturating_sub(resident_before),
    };
    black_box(registry);
    figures
}

/// Measures `rows` in a fresh copy of this bench, so that neither size's figure
/// is shaped by what an earlier build left in the allocator.
fn memory_in_fresh_process(rows: usize) -> MemoryFigures {
    let output = std::process::Command::new(std::env::current_exe().expect("the bench's path"))
        .args(std::env::args().skip(1))
        .env(MEMORY_ROWS_VARIABLE, rows.to_string())
        .output()
        .expect("the bench can run itself");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<u64> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("memory-figures "))
        .expect("the child prints its figures")
        .split_whitespace()
        .map(|number| number.parse().expect("figures are numbers"))
        .collect();
    MemoryFigures {
        codes: numbers[0],
        text: numbers[1],
        heap_kept: numbers[2],
        resident_growth: numbers[3],
    }
}

fn report_memory(sizes: &[usize]) {
    let mut measured = Vec::new();
    for &rows in sizes {
        let figures = memory_in_fresh_process(rows);
        println!(
            "memory {rows} rows (fresh process): text {:.1} MiB; heap kept {:.1} MiB, {:.0} bytes \
             per code beyond the text; resident growth {:.1} MiB, {:.0} bytes per code beyond the text",
            figures.text as f64 / MIB,
            figures.heap_kept as f64 / MIB,
            figures.beyond_text_per_code(figures.heap_kept),
            figures.resident_growth as f64 / MIB,
            figures.beyond_text_per_code(figures.resident_growth),
        );
        measured.push(figures);
    }
    // What each further code costs, without what any build costs once (thread
    // arenas, tables made on first use, the allocator's first growth).
    if let [smaller, larger] = measured[..] {
        let more_codes = (larger.codes - smaller.codes) as f64;
        let more_text = larger.text.saturating_sub(smaller.text);
        let marginal = |small: u64, large: u64| {
            large.saturating_sub(small).saturating_sub(more_text) as f64 / more_codes
        };
        println!(
            "memory per further code beyond the text ({} to {} rows): heap kept {:.0} bytes, resident {:.0} bytes",
            smaller.codes,
            larger.codes,
            marginal(smaller.heap_kept, larger.heap_kept),
            marginal(smaller.resident_growth, larger.resident_growth),
        );
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn load(criterion: &mut Criterion) {
    if let Ok(rows) = std::env::var(MEMORY_ROWS_VARIABLE) {
        let rows = rows.parse().expect("a number of rows");
        let figures = measure_memory(rows);
        println!(
            "memory-figures {} {} {} {}",
            figures.codes, figures.text, figures.heap_kept, figures.resident_growth
        );
        std::process::exit(0);
    }
    const SIZES: [usize; 2] = [20_000, 200_000];
    report_memory(&SIZES);
    for rows in SIZES {
        let csv = synthetic_csv(rows);
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
