//! `ClaimEdits`: every CMS edit table a claim is checked against, built once
//! from the built-in extracts or the operator's files and never changed; a
//! reload builds a new set and swaps it in whole.

use std::{
    io::BufReader,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{
    add_on::AddOnTable,
    edit_file::{EditFile, EditFileKind, EditProblem, Problems, RowSource},
    icd10cm::Icd10CmList,
    mue::MueTable,
    pfs::PfsTable,
    ptp::PtpTable,
};

const BUILT_IN_PTP: &str = include_str!("../../data/cms/ncci-ptp-practitioner-2024q3-pain.csv");
const BUILT_IN_MUE: &str = include_str!("../../data/cms/mue-practitioner-2024q3-pain.csv");
const BUILT_IN_ADD_ON: &str = include_str!("../../data/cms/add-on-code-edits-2024-06-pain.csv");
const BUILT_IN_PFS: &str = include_str!("../../data/cms/pfs-indicators-2024-jul-pain.csv");
const BUILT_IN_ICD10CM: &str = include_str!("../../data/cms/icd10cm-codes-2026-april.tsv");

/// The files an operator gives; a kind left empty keeps its built-in file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditFiles {
    /// The quarter's NCCI practitioner PTP files (CMS splits a quarter in four).
    pub ncci_ptp: Vec<PathBuf>,
    /// The MUE practitioner file.
    pub mue: Option<PathBuf>,
    /// The add-on code edit file.
    pub add_on_edits: Option<PathBuf>,
    /// The PFS relative value file (PPRRVU).
    pub pfs: Option<PathBuf>,
    /// The ICD-10-CM order file.
    pub icd10cm: Option<PathBuf>,
}

/// Edit files that could not be loaded, with the problems found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the claim edit files were refused with {total} problem(s); fix them and load again:\n{}", list(.problems, *.total))]
pub struct ClaimEditsError {
    /// The first problems, by file then line.
    pub problems: Vec<EditProblem>,
    /// How many there were in all.
    pub total: usize,
}

fn list(problems: &[EditProblem], total: usize) -> String {
    let mut lines: Vec<String> = problems
        .iter()
        .map(|problem| format!("  {problem}"))
        .collect();
    if total > problems.len() {
        lines.push(format!("  … and {} more", total - problems.len()));
    }
    lines.join("\n")
}

/// Every edit table in use, and the files they came from.
///
/// ```
/// use cptd::claims::ClaimEdits;
///
/// let edits = ClaimEdits::built_in().unwrap();
/// assert!(edits.version().contains("2024Q3"));
/// ```
#[derive(Debug, Clone)]
pub struct ClaimEdits {
    /// NCCI procedure-to-procedure pairs.
    pub ptp: PtpTable,
    /// Medically unlikely edits.
    pub mue: MueTable,
    /// Add-on code edits.
    pub add_ons: AddOnTable,
    /// Fee schedule payment indicators.
    pub pfs: PfsTable,
    /// ICD-10-CM codes.
    pub icd10cm: Icd10CmList,
    files: Vec<EditFile>,
    version: Arc<str>,
}

/// Where a built-in table comes from: its name and edition.
const BUILT_IN_FILES: [(EditFileKind, &str, &str); 5] = [
    (
        EditFileKind::NcciPtp,
        "ncci-ptp-practitioner-2024q3-pain.csv",
        "2024Q3 pain-management extract",
    ),
    (
        EditFileKind::Mue,
        "mue-practitioner-2024q3-pain.csv",
        "2024Q3 pain-management extract",
    ),
    (
        EditFileKind::AddOn,
        "add-on-code-edits-2024-06-pain.csv",
        "2024-06-03 pain-management extract",
    ),
    (
        EditFileKind::Pfs,
        "pfs-indicators-2024-jul-pain.csv",
        "RVU24C (July 2024) pain-management extract",
    ),
    (
        EditFileKind::Icd10Cm,
        "icd10cm-codes-2026-april.tsv",
        "FY2026 April 1, 2026 update",
    ),
];

/// Builds the tables, one file or built-in text at a time.
struct Builder {
    files: Vec<EditFile>,
    problems: Problems,
    /// The largest operator file read (`--max-data-file-size`).
    max_file_bytes: u64,
}

impl Builder {
    /// Registers a file and gives its index and name.
    fn add_file(&mut self, kind: EditFileKind, name: &str, edition: &str) -> (u16, Arc<str>) {
        let index = u16::try_from(self.files.len()).unwrap_or(u16::MAX);
        let name: Arc<str> = name.into();
        self.files.push(EditFile {
            kind,
            name: name.clone(),
            edition: edition.into(),
        });
        (index, name)
    }

    /// Registers the built-in file of `kind`.
    fn built_in(&mut self, kind: EditFileKind) -> (u16, Arc<str>) {
        let (_, name, edition) = BUILT_IN_FILES
            .iter()
            .find(|(built_in, ..)| *built_in == kind)
            .copied()
            .unwrap_or((kind, "built-in", "built-in"));
        self.add_file(kind, &format!("built-in {name}"), edition)
    }

    /// Registers an operator's file; its edition is its file name.
    fn operator_file(&mut self, kind: EditFileKind, path: &Path) -> (u16, Arc<str>) {
        let edition = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        self.add_file(kind, &path.display().to_string(), &edition)
    }

    /// Reads a small file whole, or records why it cannot be read.
    fn read_text(&mut self, name: &Arc<str>, path: &Path) -> Option<String> {
        crate::source_files::read_regular_file(path, self.max_file_bytes)
            .map_err(|error| {
                self.problems
                    .add(name, 0, format!("cannot be read: {error}"))
            })
            .ok()
    }

    fn small_table<T: Default>(
        &mut self,
        kind: EditFileKind,
        path: Option<&Path>,
        built_in: &str,
        read: impl Fn(&str, &Arc<str>, u16, &mut Problems) -> T,
    ) -> T {
        match path {
            None => {
                let (index, name) = self.built_in(kind);
                read(built_in, &name, index, &mut self.problems)
            }
            Some(path) => {
                let (index, name) = self.operator_file(kind, path);
                match self.read_text(&name, path) {
                    Some(text) => read(&text, &name, index, &mut self.problems),
                    None => T::default(),
                }
            }
        }
    }
}

impl ClaimEdits {
    /// The built-in extracts.
    pub fn built_in() -> Result<ClaimEdits, ClaimEditsError> {
        ClaimEdits::load(
            &EditFiles::default(),
            crate::config::DEFAULT_MAX_DATA_FILE_BYTES,
        )
    }

    /// Loads `files`, the built-in file standing in for each kind not given.
    /// Only regular files of at most `max_file_bytes` are read. Any problem
    /// in any file refuses the whole set.
    pub fn load(files: &EditFiles, max_file_bytes: u64) -> Result<ClaimEdits, ClaimEditsError> {
        let mut builder = Builder {
            files: Vec::new(),
            problems: Problems::default(),
            max_file_bytes,
        };
        let mut ptp = PtpTable::default();
        if files.ncci_ptp.is_empty() {
            let (index, name) = builder.built_in(EditFileKind::NcciPtp);
            ptp.read(
                BUILT_IN_PTP.as_bytes(),
                &name,
                index,
                0,
                &mut builder.problems,
            );
        }
        for path in &files.ncci_ptp {
            let (index, name) = builder.operator_file(EditFileKind::NcciPtp, path);
            let opened = crate::source_files::open_regular_file(path, max_file_bytes)
                .and_then(|file| Ok((file.metadata().map_err(|e| e.to_string())?.len(), file)));
            match opened {
                Ok((size, file)) => ptp.read(
                    BufReader::with_capacity(1 << 16, file),
                    &name,
                    index,
                    size,
                    &mut builder.problems,
                ),
                Err(error) => builder
                    .problems
                    .add(&name, 0, format!("cannot be read: {error}")),
            }
        }
        ptp.finish();
        let mue = builder.small_table(
            EditFileKind::Mue,
            files.mue.as_deref(),
            BUILT_IN_MUE,
            MueTable::read,
        );
        let add_ons = builder.small_table(
            EditFileKind::AddOn,
            files.add_on_edits.as_deref(),
            BUILT_IN_ADD_ON,
            AddOnTable::read,
        );
        let pfs = builder.small_table(
            EditFileKind::Pfs,
            files.pfs.as_deref(),
            BUILT_IN_PFS,
            PfsTable::read,
        );
        let icd10cm = builder.small_table(
            EditFileKind::Icd10Cm,
            files.icd10cm.as_deref(),
            BUILT_IN_ICD10CM,
            Icd10CmList::read,
        );
        if !builder.problems.is_empty() {
            let (problems, total) = builder.problems.into_parts();
            return Err(ClaimEditsError { problems, total });
        }
        let version = version_of(&builder.files);
        Ok(ClaimEdits {
            ptp,
            mue,
            add_ons,
            pfs,
            icd10cm,
            files: builder.files,
            version,
        })
    }

    /// The files in use, in the order [`RowSource::file`] counts them.
    pub fn files(&self) -> &[EditFile] {
        &self.files
    }

    /// The file `source` names.
    pub fn file_of(&self, source: RowSource) -> Option<&EditFile> {
        self.files.get(usize::from(source.file))
    }

    /// The editions in use, e.g. `ptp=2024Q3 pain-management extract; mue=…`:
    /// what the `cptd-claim-edits-version` header carries.
    pub fn version(&self) -> &Arc<str> {
        &self.version
    }
}

fn version_of(files: &[EditFile]) -> Arc<str> {
    let mut parts: Vec<String> = Vec::new();
    for kind in [
        EditFileKind::NcciPtp,
        EditFileKind::Mue,
        EditFileKind::AddOn,
        EditFileKind::Pfs,
        EditFileKind::Icd10Cm,
    ] {
        let editions: Vec<&str> = files
            .iter()
            .filter(|file| file.kind == kind)
            .map(|file| &*file.edition)
            .collect();
        parts.push(format!("{}={}", kind.label(), editions.join("+")));
    }
    parts.join("; ").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_file_text_panics_a_loader(text in "(\\PC|[\t,\"\r\n*0-9F])*") {
            let name: Arc<str> = "any".into();
            let mut problems = Problems::default();
            let mut ptp = PtpTable::default();
            ptp.read(format!("Column 1\tColumn 2\n{text}").as_bytes(), &name, 0, 0, &mut problems);
            ptp.read(format!("column_1,column_2\n{text}").as_bytes(), &name, 0, 0, &mut problems);
            ptp.finish();
            MueTable::read(&format!("code\n{text}"), &name, 0, &mut problems);
            AddOnTable::read(&format!("add_on_code,primary_code,edit_type\n{text}"), &name, 0, &mut problems);
            PfsTable::read(&format!("HCPCS,MOD,DESCRIPTION\n{text}"), &name, 0, &mut problems);
            Icd10CmList::read(&text, &name, 0, &mut problems);
        }
    }

    #[test]
    fn the_built_in_extracts_load_whole() {
        let edits = ClaimEdits::built_in().unwrap();
        assert_eq!(edits.ptp.len(), 18_794);
        assert_eq!(edits.mue.len(), 206);
        assert_eq!(edits.pfs.len(), 240 - edits_with_modifier_rows());
        assert_eq!(edits.icd10cm.len(), 98_166);
        assert_eq!(edits.files().len(), 5);
    }

    /// PFS rows that carry a modifier (26, TC): they price a part of a
    /// service and are not kept.
    fn edits_with_modifier_rows() -> usize {
        BUILT_IN_PFS
            .lines()
            .skip(1)
            .filter(|line| {
                line.split(',')
                    .nth(1)
                    .is_some_and(|modifier| !modifier.is_empty())
            })
            .count()
    }

    #[test]
    fn an_unreadable_file_refuses_the_set_naming_it() {
        let files = EditFiles {
            mue: Some(PathBuf::from("/nonexistent/mue.csv")),
            ..EditFiles::default()
        };
        let refused =
            ClaimEdits::load(&files, crate::config::DEFAULT_MAX_DATA_FILE_BYTES).unwrap_err();
        assert_eq!(refused.total, 1);
        assert!(refused.to_string().contains("/nonexistent/mue.csv"));
    }
}
