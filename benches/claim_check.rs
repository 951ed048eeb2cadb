//! Claim edits at the size of a real quarter: a generated NCCI practitioner
//! PTP file of 2.5 million rows in CMS's published layout (the extract's real
//! pain-management pairs first, then synthetic pairs of other codes), loaded
//! as the server loads it; then `check_claim` of a ten-line pain-management
//! claim against it, timed call by call.
//!
//! Run: `cargo bench --bench claim_check`. Prints the load time, the process's
//! peak resident memory before and after the load (`VmHWM` in
//! `/proc/self/status`), and the check's latency percentiles over
//! `CLAIM_BENCH_CALLS` calls (default 200,000) after a warm-up. Set
//! `CLAIM_BENCH_ROWS` for another file size.

use std::{
    fs::File,
    hint::black_box,
    io::{BufWriter, Write},
    path::Path,
    time::{Duration, Instant},
};

use cptd::{
    claims::{CheckContext, Claim, ClaimEdits, ClaimLine, EditFiles, check_claim, quality_gaps},
    codes::{CodeRegistry, CodeValue},
    measures::{Diagnosis, MeasureSet, Modifier, PlaceOfService},
};

const DEFAULT_ROWS: usize = 2_500_000;
const DEFAULT_CALLS: usize = 200_000;

const RATIONALES: [&str; 6] = [
    "Misuse of Column Two code with Column One code",
    "Standards of medical/surgical practice",
    "CPT Manual or CMS manual coding instruction",
    "Mutually exclusive procedures",
    "HCPCS/CPT procedure code definition",
    "More extensive procedure",
];

/// Writes `rows` pairs in CMS's tab-separated practitioner layout.
fn write_ptp_file(path: &Path, rows: usize) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(
        b"CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t\r\n\
          Column1/Column2 Edits\t\t\t\t\t\t\r\n\
          Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n\
          \t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n\
          \t\t\t\t*=no data\t1=allowed\t\r\n\
          \t\t\t\t\t9=not applicable\t\r\n",
    )?;
    let extract = include_str!("../data/cms/ncci-ptp-practitioner-2024q3-pain.csv");
    let mut written = 0;
    for line in extract.lines().skip(1) {
        let cells: Vec<&str> = line.splitn(5, ',').collect();
        let deletion = if cells[2] == "99991231" {
            "*"
        } else {
            cells[2]
        };
        writeln!(
            out,
            "{}\t{}\t*\t19960101\t{deletion}\t{}\t{}\r",
            cells[0], cells[1], cells[3], cells[4]
        )?;
        written += 1;
    }
    // Synthetic pairs among Category I codes the claim does not use: 25,000
    // column-1 codes with 100 column-2 codes each, as a quarter's 2.5 million
    // pairs spread over its codes.
    let mut index = 0usize;
    while written < rows {
        let column_1 = 30_000 + index / 100;
        let column_2 = 10_000 + (index.wrapping_mul(7_919)) % 50_000;
        let (deletion, indicator) = match index % 10 {
            0 => ("20191231", '1'),
            1..=4 => ("*", '0'),
            9 => ("20220101", '9'),
            _ => ("*", '1'),
        };
        writeln!(
            out,
            "{column_1}\t{column_2}\t\t20150101\t{deletion}\t{indicator}\t{}\r",
            RATIONALES[index % RATIONALES.len()]
        )?;
        written += 1;
        index += 1;
    }
    out.flush()
}

/// The process's peak resident memory so far, in MiB.
fn peak_resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// A ten-line pain-management claim: a visit, bilateral transforaminal and
/// facet injections with their add-on levels, fluoroscopy, a knee injection
/// and the pain measures' quality codes.
pub fn ten_line_claim() -> Claim {
    let line = |code: &str, modifiers: &[&str], units: u16| ClaimLine {
        code: CodeValue::parse(code).unwrap(),
        modifiers: modifiers
            .iter()
            .map(|modifier| Modifier::parse(modifier).unwrap())
            .collect(),
        units,
        diagnosis_pointers: vec![1, 2],
    };
    Claim {
        service_date: jiff::civil::date(2024, 8, 1),
        place_of_service: Some(PlaceOfService::parse("11").unwrap()),
        provider_id: "1234567893".to_string(),
        tin: None,
        patient_age: Some(61),
        patient_sex: None,
        diagnoses: ["M54.16", "M47.816", "C50.911"]
            .map(|code| Diagnosis::parse(code).unwrap())
            .to_vec(),
        lines: vec![
            line("99214", &["25"], 1),
            line("64483", &["RT"], 1),
            line("64484", &["RT"], 2),
            line("64493", &["LT"], 1),
            line("64494", &["LT"], 1),
            line("77003", &[], 1),
            line("20610", &["RT"], 1),
            line("G2211", &[], 1),
            line("1125F", &[], 1),
            line("0521F", &[], 1),
        ],
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let rows = std::env::var("CLAIM_BENCH_ROWS")
        .ok()
        .and_then(|rows| rows.parse().ok())
        .unwrap_or(DEFAULT_ROWS);
    let calls = std::env::var("CLAIM_BENCH_CALLS")
        .ok()
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(DEFAULT_CALLS);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("ccipra-v999r0-f1.txt");
    write_ptp_file(&path, rows).expect("the generated PTP file is written");
    let size_mib = std::fs::metadata(&path).map_or(0, |meta| meta.len()) as f64 / 1048576.0;

    let registry = CodeRegistry::built_in().unwrap();
    let measures = MeasureSet::built_in().unwrap();
    let before = peak_resident_mib();
    let started = Instant::now();
    let edits = ClaimEdits::load(
        &EditFiles {
            ncci_ptp: vec![path.clone()],
            ..EditFiles::default()
        },
        cptd::config::DEFAULT_MAX_DATA_FILE_BYTES,
    )
    .expect("the generated file loads");
    let load = started.elapsed();
    let after = peak_resident_mib();
    println!(
        "load: {} PTP rows ({size_mib:.0} MiB file) in {:.2} s; peak resident memory {before:.0} MiB \
         before, {after:.0} MiB after (+{:.0} MiB)",
        edits.ptp.len(),
        load.as_secs_f64(),
        after - before
    );

    let claim = ten_line_claim();
    let context = CheckContext {
        edits: &edits,
        registry: &registry,
    };
    let findings = check_claim(&claim, context);
    let gaps = quality_gaps(&claim, &measures);
    println!(
        "the ten-line claim: {} findings, {} quality gaps",
        findings.len(),
        gaps.len()
    );
    for _ in 0..calls / 10 {
        black_box(check_claim(black_box(&claim), context));
    }
    let mut timings = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        black_box(check_claim(black_box(&claim), context));
        black_box(quality_gaps(black_box(&claim), &measures));
        timings.push(started.elapsed());
    }
    timings.sort_unstable();
    println!(
        "check_claim + quality_gaps, {calls} calls: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        percentile(&timings, 0.50).as_secs_f64() * 1e6,
        percentile(&timings, 0.90).as_secs_f64() * 1e6,
        percentile(&timings, 0.99).as_secs_f64() * 1e6,
        percentile(&timings, 0.999).as_secs_f64() * 1e6,
        timings.last().map_or(0.0, |max| max.as_secs_f64() * 1e6),
    );
}
