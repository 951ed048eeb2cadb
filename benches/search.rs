//! Search speed and scale: index build time and memory, query latency (median and
//! p99 over a mix of realistic queries), and the indexed search against a
//! brute-force scan with the same matching rules, on the built-in code set and on
//! synthetic corpora of 20,000 and 200,000 codes.
//!
//! Run with `cargo bench --bench search`; the figures are in `BENCHMARKS.md`.
//! Besides criterion's own report, each corpus prints one summary line per
//! measure (`search: ...`), which is what BENCHMARKS.md records.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use cptd::codes::{CodeFilter, CodeRegistry, Explain, SearchIndex, SearchQuery};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jiff::civil::date;

/// How people search: words, jargon, typos, prefixes being typed, codes.
const QUERIES: [&str; 24] = [
    "lumbar facet injection",
    "transforaminal epidural lumbar single level",
    "radiofrequency ablation genicular",
    "TFESI L5",
    "lumbar MBB",
    "SI RFA",
    "knee shot",
    "trigger point 3 muscles",
    "botox migraine",
    "epidrual steroid",
    "kyphoplsty",
    "chemodenervaton neck",
    "kyph",
    "sacroiliac jo",
    "stellate gang",
    "nerve bl",
    "in",
    "injection",
    "6449",
    "64483",
    "spinal cord stimulator trial",
    "ultrasound guided knee injection",
    "back nerve burning",
    "second level cervical facet",
];

/// A small deterministic generator, so every run indexes the same corpus.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[(self.next() % words.len() as u64) as usize]
    }
}

const PROCEDURES: [&str; 20] = [
    "Injection of an anesthetic or steroid into",
    "Needle aspiration or injection of",
    "Neurolytic destruction of the nerves supplying",
    "Radiofrequency ablation of the nerves that supply",
    "Percutaneous placement of a neurostimulator electrode array along",
    "Revision or removal of a neurostimulator electrode array along",
    "Chemodenervation of the muscles of",
    "Transforaminal epidural injection at",
    "Interlaminar epidural injection of",
    "Percutaneous vertebral augmentation of",
    "Percutaneous fusion of",
    "Cryoablation of a nerve of",
    "Injection of platelet-rich plasma into",
    "Placement of an indwelling catheter for continuous infusion near",
    "Decompression of",
    "Arthrodesis of",
    "Trigger point injection of",
    "Diagnostic block of",
    "Thermal destruction of the basivertebral nerve of",
    "Open repair of",
];

const ANATOMY: [&str; 24] = [
    "a lumbar facet joint",
    "a cervical facet joint",
    "a thoracic facet joint",
    "the sacroiliac joint",
    "the genicular nerves of the knee",
    "the greater occipital nerve",
    "the stellate ganglion",
    "the celiac plexus",
    "the lumbar epidural space",
    "the cervical epidural space",
    "an intervertebral disc",
    "a major joint such as the shoulder, hip or knee",
    "a small joint such as a finger or toe",
    "an intermediate joint such as the wrist or ankle",
    "a tendon sheath",
    "the trunk muscles",
    "an extremity",
    "a peripheral nerve",
    "the brachial plexus",
    "the femoral nerve",
    "the sciatic nerve",
    "the pudendal nerve",
    "an intercostal nerve",
    "a thoracic vertebral body",
];

const COUNTS: [&str; 8] = [
    "at a single level",
    "at each additional level",
    "involving one or two muscles",
    "involving three or more muscles",
    "on one side (unilateral)",
    "on both sides (bilateral)",
    "at the second level",
    "at the third and any further levels",
];

const GUIDANCE: [&str; 5] = [
    "with fluoroscopic guidance included",
    "with CT guidance included",
    "with ultrasound guidance and a permanent record of the images",
    "without imaging guidance",
    "with imaging guidance reported separately",
];

const SYNONYMS: [&str; 24] = [
    "ESI",
    "MBB",
    "RFA",
    "TPI",
    "SCS",
    "PRP",
    "nerve block",
    "knee shot",
    "facet block",
    "nerve burning",
    "botox",
    "kypho",
    "SI joint injection",
    "epidural steroid injection",
    "spinal cord stimulator trial",
    "genicular RFA",
    "cortisone shot",
    "rhizotomy",
    "cryo",
    "dry needling",
    "blood patch",
    "pain pump",
    "TFESI",
    "lumbar MBB",
];

const QUALIFIERS: [&str; 16] = [
    "for chronic pain",
    "for cancer pain",
    "for spasticity",
    "for cervical dystonia",
    "for chronic migraine",
    "after failed conservative care",
    "using a transfixing device",
    "using a balloon to create a cavity",
    "using cooled radiofrequency",
    "using pulsed radiofrequency",
    "using phenol or alcohol",
    "using a cryoprobe",
    "with arthrography",
    "with neuromonitoring",
    "including discography at that level",
    "with a permanent implanted pulse generator",
];

/// Syllables of coined names: device brands and eponyms ("Racz", "Intracept"),
/// which give a real code set its long tail of rare words.
const SYLLABLES: [&str; 24] = [
    "ra", "cz", "in", "tra", "cept", "vo", "lu", "mo", "ne", "ka", "zi", "pho", "ro", "ta", "se",
    "qui", "dor", "ve", "la", "mi", "nu", "sto", "gal", "ber",
];

const HEADINGS: [&str; 8] = [
    "Paravertebral spinal nerve injections",
    "Neurolytic destruction of nerves",
    "Somatic nerve injections",
    "Spinal neurostimulators",
    "Joint and bursa injections",
    "Chemodenervation",
    "Vertebral augmentation",
    "Fascial plane blocks",
];

/// A code set of `count` codes with descriptors assembled from the word lists.
fn synthetic_codes(count: usize) -> String {
    let mut random = SplitMix(count as u64);
    let mut csv =
        String::from("code,descriptor,short_name,section,subsection,heading,anatomy,synonyms\n");
    for number in 0..count {
        // Five-digit codes first, then HCPCS letters A-V with four digits.
        let code = if number < 100_000 {
            format!("{number:05}")
        } else {
            let rest = number - 100_000;
            format!(
                "{}{:04}",
                char::from(b'A' + (rest / 10_000) as u8),
                rest % 10_000
            )
        };
        let anatomy = random.pick(&ANATOMY);
        // Codes come in families of about eight that share a coined name.
        let mut family = SplitMix(number as u64 / 8);
        let coined: String = (0..2 + family.next() % 3)
            .map(|_| family.pick(&SYLLABLES))
            .collect();
        let descriptor = format!(
            "{} {} {}, {}, {}, such as the {coined} procedure.",
            random.pick(&PROCEDURES),
            anatomy,
            random.pick(&COUNTS),
            random.pick(&QUALIFIERS),
            random.pick(&GUIDANCE)
        );
        let mut synonyms: Vec<String> = (0..2 + random.next() % 3)
            .map(|_| random.pick(&SYNONYMS).to_string())
            .collect();
        synonyms.push(coined);
        let short_name: String = descriptor.chars().take(26).collect();
        csv.push_str(&format!(
            "{code},\"{descriptor}\",\"{}\",Surgery,Nervous System,{},\"{}\",{}\n",
            short_name.trim(),
            random.pick(&HEADINGS),
            anatomy.trim_start_matches("the ").trim_start_matches("a "),
            synonyms.join("|")
        ));
    }
    csv
}

fn text_bytes(registry: &CodeRegistry) -> usize {
    registry
        .histories()
        .iter()
        .flat_map(|history| history.versions())
        .map(|version| {
            version.descriptor.len()
                + version.short_name.len()
                + version.section.len()
                + version.subsection.len()
                + version.heading.len()
                + version.anatomy.len()
                + version
                    .synonyms
                    .iter()
                    .map(|synonym| synonym.len())
                    .sum::<usize>()
        })
        .sum()
}

/// Median and 99th percentile of `rounds` passes over every query.
fn percentiles(rounds: usize, mut run: impl FnMut(&'static str)) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(rounds * QUERIES.len());
    for _ in 0..rounds {
        for text in QUERIES {
            let start = Instant::now();
            run(text);
            samples.push(start.elapsed());
        }
    }
    samples.sort_unstable();
    let at = |share: f64| samples[((samples.len() as f64 - 1.0) * share).round() as usize];
    (at(0.5), at(0.99))
}

fn corpus(criterion: &mut Criterion, name: &str, registry: &CodeRegistry, scan_rounds: usize) {
    let filter = CodeFilter::default();
    let query = |text: &'static str| SearchQuery {
        text,
        filter: &filter,
        as_of: date(2025, 6, 1),
    };
    let codes = registry.len();
    let index = registry.search_index();

    let build_start = Instant::now();
    let rebuilt = SearchIndex::build(registry.histories());
    let build = build_start.elapsed();
    println!(
        "search: {name}: {codes} codes, {} terms; index build {build:.2?}; index {} bytes = {:.0} bytes/code (text {:.0} bytes/code)",
        rebuilt.terms(),
        index.heap_bytes(),
        index.heap_bytes() as f64 / codes as f64,
        text_bytes(registry) as f64 / codes as f64,
    );
    drop(rebuilt);

    let (page_median, page_p99) = percentiles(200, |text| {
        black_box(
            registry
                .search_page(&query(text), 0, 20, Explain::Matches)
                .hits
                .len(),
        );
    });
    let (full_median, full_p99) = percentiles(50, |text| {
        black_box(registry.search(&query(text)).len());
    });
    let (scan_median, scan_p99) = percentiles(scan_rounds, |text| {
        black_box(registry.search_by_scan(&query(text)).len());
    });
    println!(
        "search: {name}: first page of 20 median {page_median:.1?} p99 {page_p99:.1?}; \
         full ranking median {full_median:.1?} p99 {full_p99:.1?}; \
         brute-force scan median {scan_median:.1?} p99 {scan_p99:.1?}; \
         scan/index {:.0}x at the median, {:.0}x at p99",
        scan_median.as_secs_f64() / full_median.as_secs_f64(),
        scan_p99.as_secs_f64() / full_p99.as_secs_f64(),
    );

    let mut group = criterion.benchmark_group(format!("search {name}"));
    // The largest corpus takes seconds per build and per scan pass: its figures
    // are the summary lines above, not criterion samples.
    let small = codes <= 50_000;
    if small {
        group.bench_function("index build", |bencher| {
            bencher.iter(|| SearchIndex::build(black_box(registry.histories())))
        });
    }
    group.bench_function("query mix, first page", |bencher| {
        bencher.iter(|| {
            for text in QUERIES {
                black_box(
                    registry
                        .search_page(&query(text), 0, 20, Explain::Matches)
                        .hits
                        .len(),
                );
            }
        })
    });
    if codes < 1_000 {
        group.bench_function("query mix, brute-force scan", |bencher| {
            bencher.iter(|| {
                for text in QUERIES {
                    black_box(registry.search_by_scan(&query(text)).len());
                }
            })
        });
    }
    for text in ["lumbar facet injection", "epidrual steroid", "kyph", "6449"] {
        group.bench_with_input(
            BenchmarkId::new("first page", text),
            &text,
            |bencher, &text| {
                bencher.iter(|| {
                    registry
                        .search_page(&query(text), 0, 20, Explain::Matches)
                        .hits
                        .len()
                })
            },
        );
    }
    group.finish();
}

fn search(criterion: &mut Criterion) {
    let built_in = CodeRegistry::built_in().expect("the built-in code set loads");
    corpus(criterion, "built-in", &built_in, 200);
    for count in [20_000, 200_000] {
        let csv = synthetic_codes(count);
        let registry = CodeRegistry::from_sources(&[("synthetic.csv", &csv)])
            .expect("the synthetic code set loads");
        corpus(
            criterion,
            &format!("synthetic {count}"),
            &registry,
            if count > 50_000 { 3 } else { 10 },
        );
    }
}

criterion_group! {
    name = benches;
    // Short runs: the figures are medians of many queries, and the whole bench
    // finishes in a few minutes.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = search
}
criterion_main!(benches);
