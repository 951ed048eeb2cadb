//! The measures in force: the built-in ones and any loaded from files, in
//! either of the shapes CMS publishes.
//!
//! A file that is a JSON object holds definitions keyed by measure id (CMS's
//! claims single-source file, or cptd's own measures); a file that is a JSON
//! array holds CMS's `measures-data.json` entries, whose titles, `isInverse`,
//! `strata` and `overallAlgorithm` complete the definitions of the same ids.
//! Entries with no definition loaded are other measures and are passed over.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
};

use serde::Deserialize;

use super::{
    FastMap,
    definition::{Measure, MeasureProblem, Problems, RawMeasure, RawMetadata, compile},
    encounter::Claim,
    engine::{Judgement, Verdict, judge},
};
use crate::{codes::CodeValue, source_files};

/// The built-in measures, embedded so that the binary needs no files.
const BUILT_IN_MEASURES: &str = include_str!("../../data/measures.json");

/// The name the built-in measure file goes by in messages.
pub const BUILT_IN_MEASURE_SOURCE: &str = "built-in measures.json";

/// Most problems one refusal lists.
const MAX_LISTED_PROBLEMS: usize = 200;

/// A measure set that could not be loaded, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the measure files were refused with {} problem(s); fix them and load them again:\n{}",
    .problems.len(),
    list(.problems)
)]
pub struct MeasureSetError {
    /// The problems, file by file, at most 200.
    pub problems: Vec<MeasureProblem>,
}

fn list(problems: &[MeasureProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| format!("  {problem}"))
        .collect();
    lines.join("\n")
}

/// One stratum of one measure, judged for one claim.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The measure.
    pub measure: Arc<Measure>,
    /// The stratum's position in the measure.
    pub stratum: usize,
    /// The claim's judgement there.
    pub judgement: Judgement,
}

impl Judged {
    /// The verdict a caller is told.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            measure_id: self.measure.id.clone(),
            stratum: self.measure.strata[self.stratum].name.clone(),
            outcome: self.judgement.outcome,
            reason: self.judgement.reason.clone(),
        }
    }
}

/// Every measure in force, in id order. Built once and shared; never changed.
///
/// ```
/// use cptd::measures::MeasureSet;
///
/// let measures = MeasureSet::built_in().unwrap();
/// assert!(measures.get("pain-plan-of-care").is_some());
/// ```
#[derive(Debug, Clone)]
pub struct MeasureSet {
    measures: Vec<Arc<Measure>>,
    /// For each procedure code, the positions in `measures` of those whose
    /// eligibility options name it, ascending. With CMS's yearly file loaded a
    /// claim faces some thirty measures, most of which name none of its codes;
    /// this tells which without asking each.
    by_procedure: FastMap<CodeValue, Vec<usize>>,
}

/// A measure file's text and whether it is cptd's own built-in one.
struct Source<'a> {
    name: &'a str,
    text: &'a str,
    built_in: bool,
}

/// A `measures-data.json` entry, as far as cptd reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadataEntry {
    measure_id: String,
    #[serde(flatten)]
    metadata: RawMetadata,
}

impl MeasureSet {
    /// The two built-in measures.
    pub fn built_in() -> Result<MeasureSet, MeasureSetError> {
        MeasureSet::build(&[built_in_source()])
    }

    /// The built-in measures and those of `files`. Any problem in any file (an
    /// unreadable file, a bad definition, an id defined twice, a measure whose
    /// calculation type cptd cannot tell, a file that is not a regular file or
    /// is larger than `max_file_bytes`) refuses them all.
    pub fn load(files: &[PathBuf], max_file_bytes: u64) -> Result<MeasureSet, MeasureSetError> {
        let texts = source_files::read_all(files, max_file_bytes).map_err(|unreadable| {
            MeasureSetError {
                problems: unreadable
                    .into_iter()
                    .map(|file| MeasureProblem {
                        source: file.name.into(),
                        measure: None,
                        path: String::new(),
                        message: format!("cannot read the file: {}", file.reason),
                    })
                    .collect(),
            }
        })?;
        let mut sources = vec![built_in_source()];
        sources.extend(texts.iter().map(|(name, text)| Source {
            name,
            text,
            built_in: false,
        }));
        MeasureSet::build(&sources)
    }

    /// The measures of files given as `(name, text)`, without the built-in
    /// ones.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<MeasureSet, MeasureSetError> {
        let sources: Vec<Source> = sources
            .iter()
            .map(|&(name, text)| Source {
                name,
                text,
                built_in: false,
            })
            .collect();
        MeasureSet::build(&sources)
    }

    fn build(sources: &[Source]) -> Result<MeasureSet, MeasureSetError> {
        let mut problems = Vec::new();
        let mut definitions: BTreeMap<String, (RawMeasure, &Source)> = BTreeMap::new();
        let mut metadata: HashMap<String, RawMetadata> = HashMap::new();
        for source in sources {
            let name: Arc<str> = source.name.into();
            let file_problem = |message: String| MeasureProblem {
                source: name.clone(),
                measure: None,
                path: String::new(),
                message,
            };
            let value: serde_json::Value = match serde_json::from_str(source.text) {
                Ok(value) => value,
                Err(error) => {
                    problems.push(file_problem(format!("not JSON ({error})")));
                    continue;
                }
            };
            match value {
                serde_json::Value::Object(entries) => {
                    for (key, value) in entries {
                        let mut found = Problems {
                            source: &name,
                            measure: &key,
                            found: &mut problems,
                        };
                        if let Some((_, first)) = definitions.get(&key) {
                            let first = first.name;
                            found.add(
                                "",
                                format!("this measure id is already defined in {first}; each id may be defined once"),
                            );
                            continue;
                        }
                        match serde_json::from_value::<RawMeasure>(value) {
                            Ok(raw) => {
                                definitions.insert(key, (raw, source));
                            }
                            Err(error) => {
                                found.add("", format!("does not have the measure shape: {error}"))
                            }
                        }
                    }
                }
                serde_json::Value::Array(entries) => {
                    for (index, value) in entries.into_iter().enumerate() {
                        match serde_json::from_value::<RawMetadataEntry>(value) {
                            Ok(entry) => {
                                metadata.entry(entry.measure_id).or_insert(entry.metadata);
                            }
                            Err(error) => problems.push(MeasureProblem {
                                path: format!("[{index}]"),
                                ..file_problem(format!(
                                    "does not have the shape of a measures-data entry: {error}"
                                ))
                            }),
                        }
                    }
                }
                _ => problems.push(file_problem(
                    "neither an object of measure definitions keyed by id nor an array of \
                     measures-data entries"
                        .into(),
                )),
            }
        }
        let mut measures = Vec::with_capacity(definitions.len());
        for (key, (raw, source)) in definitions {
            let name: Arc<str> = source.name.into();
            let mut found = Problems {
                source: &name,
                measure: &key,
                found: &mut problems,
            };
            let known = metadata.get(&key).cloned().unwrap_or_default();
            if let Some(measure) = compile(&key, raw, known, !source.built_in, &mut found) {
                measures.push(Arc::new(measure));
            }
        }
        if !problems.is_empty() {
            problems.truncate(MAX_LISTED_PROBLEMS);
            return Err(MeasureSetError { problems });
        }
        let mut by_procedure: FastMap<CodeValue, Vec<usize>> = FastMap::default();
        for (position, measure) in measures.iter().enumerate() {
            let procedures = measure
                .strata
                .iter()
                .flat_map(|stratum| &stratum.eligibility)
                .flat_map(|option| option.procedures.keys());
            for code in procedures {
                let positions = by_procedure.entry(*code).or_default();
                if positions.last() != Some(&position) {
                    positions.push(position);
                }
            }
        }
        Ok(MeasureSet {
            measures,
            by_procedure,
        })
    }

    /// Every measure, in id order.
    pub fn measures(&self) -> &[Arc<Measure>] {
        &self.measures
    }

    /// The measure with `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Measure>> {
        self.measures
            .binary_search_by(|measure| (*measure.id).cmp(id))
            .ok()
            .map(|index| &self.measures[index])
    }

    /// `claim` judged under every stratum of every measure, in measure id
    /// order, each measure's strata in turn. A measure none of whose
    /// eligibility options names a procedure code the claim reports cannot
    /// admit it, so its strata are decided without looking further.
    pub fn judge(&self, claim: &Claim) -> Vec<Judged> {
        let mut named = vec![false; self.measures.len()];
        for reported in &claim.codes {
            for &position in self.by_procedure.get(&reported.code).into_iter().flatten() {
                named[position] = true;
            }
        }
        let mut judged = Vec::new();
        for (measure, named) in self.measures.iter().zip(named) {
            for (index, stratum) in measure.strata.iter().enumerate() {
                let judgement = if named {
                    judge(measure, stratum, claim)
                } else {
                    Judgement::not_eligible()
                };
                judged.push(Judged {
                    measure: measure.clone(),
                    stratum: index,
                    judgement,
                });
            }
        }
        judged
    }

    /// The verdicts of `claim` under every stratum of every measure, in the
    /// order of [`MeasureSet::judge`].
    pub fn evaluate(&self, claim: &Claim) -> Vec<Verdict> {
        self.judge(claim).iter().map(Judged::verdict).collect()
    }

    /// For each quality code, the ids of the measures that name it (in a
    /// performance option, or as a code a stratum requires), in id order; what
    /// the code registry lists as a code's `measure_ids`.
    pub fn measure_ids_by_code(&self) -> HashMap<CodeValue, Vec<String>> {
        let mut by_code: HashMap<CodeValue, Vec<String>> = HashMap::new();
        for measure in &self.measures {
            let scored = measure
                .strata
                .iter()
                .flat_map(|stratum| &stratum.performance)
                .flat_map(|option| &option.codes);
            let required = measure
                .strata
                .iter()
                .flat_map(|stratum| &stratum.eligibility)
                .flat_map(|option| &option.required);
            let mut codes: Vec<CodeValue> =
                scored.chain(required).map(|quality| quality.code).collect();
            codes.sort();
            codes.dedup();
            for code in codes {
                let ids = by_code.entry(code).or_default();
                if ids.last().map(String::as_str) != Some(&*measure.id) {
                    ids.push(measure.id.to_string());
                }
            }
        }
        by_code
    }
}

fn built_in_source() -> Source<'static> {
    Source {
        name: BUILT_IN_MEASURE_SOURCE,
        text: BUILT_IN_MEASURES,
        built_in: true,
    }
}
