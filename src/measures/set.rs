//! The measures in force: the built-in ones and any loaded from files.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
};

use super::{
    FastMap,
    definition::{Measure, MeasureProblem, OptionGroup, read_measure_file},
    encounter::Claim,
    engine::{Outcome, Reason, Verdict, evaluate_group, verdict},
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
    /// eligibility options name it, ascending. With CMS's yearly file loaded an
    /// encounter faces some thirty measures, most of which name none of its
    /// codes; this tells which without asking each.
    by_procedure: FastMap<CodeValue, Vec<usize>>,
    /// For each measure, the position of its first option group among all the
    /// set's groups (see [`MeasureSet::outcomes`]); one more entry holds their
    /// number.
    first_groups: Vec<usize>,
}

impl MeasureSet {
    /// The two built-in measures.
    pub fn built_in() -> Result<MeasureSet, MeasureSetError> {
        MeasureSet::from_sources(&[(BUILT_IN_MEASURE_SOURCE, BUILT_IN_MEASURES)])
    }

    /// The built-in measures and those of `files`. Any problem in any file (an
    /// unreadable file, a bad definition, an id defined twice) refuses them all.
    pub fn load(files: &[PathBuf]) -> Result<MeasureSet, MeasureSetError> {
        let texts = source_files::read_all(files).map_err(|unreadable| MeasureSetError {
            problems: unreadable
                .into_iter()
                .map(|file| MeasureProblem {
                    source: file.name.into(),
                    measure: None,
                    path: String::new(),
                    message: format!("cannot read the file: {}", file.error),
                })
                .collect(),
        })?;
        MeasureSet::from_sources(&source_files::after_built_in(
            (BUILT_IN_MEASURE_SOURCE, BUILT_IN_MEASURES),
            &texts,
        ))
    }

    /// Builds the set from measure files given as `(name, text)`.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<MeasureSet, MeasureSetError> {
        let mut problems = Vec::new();
        let mut by_id: BTreeMap<Arc<str>, (Arc<Measure>, &str)> = BTreeMap::new();
        for (name, text) in sources {
            match read_measure_file(name, text) {
                Ok(measures) => {
                    for measure in measures {
                        if let Some((_, first)) = by_id.get(&measure.id) {
                            problems.push(MeasureProblem {
                                source: (*name).into(),
                                measure: Some(measure.id.to_string()),
                                path: String::new(),
                                message: format!(
                                    "this measure id is already defined in {first}; each id may be defined once"
                                ),
                            });
                            continue;
                        }
                        by_id.insert(measure.id.clone(), (Arc::new(measure), name));
                    }
                }
                Err(found) => problems.extend(found),
            }
        }
        if !problems.is_empty() {
            problems.truncate(MAX_LISTED_PROBLEMS);
            return Err(MeasureSetError { problems });
        }
        let measures: Vec<Arc<Measure>> = by_id.into_values().map(|(measure, _)| measure).collect();
        let mut by_procedure: FastMap<CodeValue, Vec<usize>> = FastMap::default();
        for (position, measure) in measures.iter().enumerate() {
            let procedures = measure
                .groups
                .iter()
                .flat_map(|group| &group.eligibility)
                .flat_map(|option| option.procedures.keys());
            for code in procedures {
                let positions = by_procedure.entry(*code).or_default();
                if positions.last() != Some(&position) {
                    positions.push(position);
                }
            }
        }
        let first_groups = std::iter::once(0)
            .chain(measures.iter().scan(0, |groups, measure| {
                *groups += measure.groups.len();
                Some(*groups)
            }))
            .collect();
        Ok(MeasureSet {
            measures,
            by_procedure,
            first_groups,
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

    /// The position of `measure`'s first option group among the set's groups,
    /// where its outcomes and totals are kept; `None` for a measure not in
    /// the set.
    pub fn first_group(&self, measure: &Measure) -> Option<usize> {
        self.measures
            .binary_search_by(|candidate| candidate.id.cmp(&measure.id))
            .ok()
            .map(|position| self.first_groups[position])
    }

    /// The verdicts of `encounter` under every measure: one per option group, in
    /// measure id order, so the verdict at each position is the outcome
    /// [`MeasureSet::outcomes`] gives there.
    pub fn evaluate(&self, encounter: &Claim) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        self.judge(encounter, &mut verdicts, verdict);
        verdicts
    }

    /// The outcomes of `encounter` under every option group, without the
    /// reasons and names of [`MeasureSet::evaluate`]: what the totals count.
    /// They are by group position: the set's measures in id order, each
    /// measure's groups in turn ([`MeasureSet::first_group`] finds a
    /// measure's).
    pub fn outcomes(&self, encounter: &Claim) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        self.outcomes_into(encounter, &mut outcomes);
        outcomes
    }

    /// [`MeasureSet::outcomes`], appended to `outcomes`: for callers that
    /// keep the outcomes of many encounters in one buffer.
    pub fn outcomes_into(&self, encounter: &Claim, outcomes: &mut Vec<Outcome>) {
        self.judge(encounter, outcomes, |_, _, outcome, _| outcome);
    }

    /// Appends `judged` of each option group of every measure to `all`, in the
    /// set's order. A measure none of whose eligibility options names a
    /// procedure code the encounter reports cannot admit it, so its groups are
    /// decided without looking further.
    fn judge<T>(
        &self,
        encounter: &Claim,
        all: &mut Vec<T>,
        judged: impl Fn(&Measure, &OptionGroup, Outcome, Reason) -> T,
    ) {
        let mut named = vec![false; self.measures.len()];
        for reported in &encounter.codes {
            for &position in self.by_procedure.get(&reported.code).into_iter().flatten() {
                named[position] = true;
            }
        }
        all.reserve(self.group_count());
        for (measure, named) in self.measures.iter().zip(named) {
            for group in &measure.groups {
                let (outcome, reason) = if named {
                    evaluate_group(group, encounter)
                } else {
                    (Outcome::NotInDenominator, Reason::NotEligible)
                };
                all.push(judged(measure, group, outcome, reason));
            }
        }
    }

    fn group_count(&self) -> usize {
        self.first_groups.last().copied().unwrap_or_default()
    }

    /// For each quality code, the ids of the measures that name it, in id order;
    /// what the code registry lists as a code's `measure_ids`.
    pub fn measure_ids_by_code(&self) -> HashMap<CodeValue, Vec<String>> {
        let mut by_code: HashMap<CodeValue, Vec<String>> = HashMap::new();
        for measure in &self.measures {
            let codes = measure
                .groups
                .iter()
                .flat_map(|group| &group.performance)
                .flat_map(|option| &option.codes)
                .map(|quality| quality.code);
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
