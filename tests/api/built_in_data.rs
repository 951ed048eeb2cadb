//! The built-in code set, checked through the library: coverage of the domain
//! facts, deletions with their replacements, and internal consistency.

use std::collections::HashSet;

use cptd::codes::{CodeHistory, CodeRegistry, CodeValue, CodeVersion, MAX_SHORT_NAME_CHARS};

fn registry() -> CodeRegistry {
    CodeRegistry::built_in().expect("the built-in set loads")
}

fn code(text: &str) -> CodeValue {
    CodeValue::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// Every code from `first` to `last`, both five digits.
fn numeric_range(first: u32, last: u32) -> Vec<String> {
    (first..=last)
        .map(|number| format!("{number:05}"))
        .collect()
}

fn every_version(registry: &CodeRegistry) -> impl Iterator<Item = &CodeVersion> {
    registry.histories().iter().flat_map(CodeHistory::versions)
}

#[test]
fn the_set_holds_at_least_150_codes_with_no_duplicates() {
    // Arrange
    let registry = registry();

    // Act
    let codes: Vec<CodeValue> = registry.histories().iter().map(CodeHistory::code).collect();

    // Assert
    assert!(codes.len() >= 150, "only {} codes", codes.len());
    assert_eq!(codes.len(), registry.len());
    assert!(
        codes.windows(2).all(|pair| pair[0] < pair[1]),
        "histories are not in strict code order"
    );
    for history in registry.histories() {
        assert!(
            history
                .versions()
                .iter()
                .all(|version| version.code == history.code()),
            "a version of {} carries another code",
            history.code()
        );
    }
}

#[test]
fn every_code_the_domain_facts_name_is_present() {
    // Arrange
    let registry = registry();
    let mut expected: Vec<String> = [
        "20600", "20604", "20605", "20606", "20610", "20611", "20550", "20551", "20552", "20553",
        "20560", "20561", "64479", "64480", "64483", "64484", "27096", "64451", "64625", "64454",
        "64624", "63650", "63685", "1125F", "1126F", "0521F", "0232T", "0440T", "0441T", "0442T",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    expected.extend(numeric_range(62320, 62327));
    expected.extend(numeric_range(64490, 64495));
    expected.extend(numeric_range(64633, 64636));
    expected.extend(numeric_range(22510, 22515));
    expected.extend(numeric_range(99202, 99205));
    expected.extend(numeric_range(99211, 99215));
    expected.extend(["0213T", "0214T", "0215T", "0216T", "0217T", "0218T"].map(String::from));
    let day = jiff::civil::date(2025, 6, 1);

    // Act
    let missing: Vec<&String> = expected
        .iter()
        .filter(|text| {
            registry
                .get(code(text), day)
                .map_or(true, |found| !found.standing.is_active())
        })
        .collect();

    // Assert
    assert!(
        missing.is_empty(),
        "missing or not active in mid 2025: {missing:?}"
    );
}

#[test]
fn deleted_codes_carry_their_deletion_date_and_replacement() {
    // Arrange
    let registry = registry();
    let deleted = [
        ("62310", "2017-01-01", "62320"),
        ("62311", "2017-01-01", "62322"),
        ("62318", "2017-01-01", "62324"),
        ("62319", "2017-01-01", "62326"),
        ("64470", "2010-01-01", "64490"),
        ("64475", "2010-01-01", "64493"),
        ("22520", "2015-01-01", "22510"),
        ("99201", "2021-01-01", "99202"),
    ];

    for (text, deletion, replacement) in deleted {
        // Act
        let history = registry
            .history(code(text))
            .unwrap_or_else(|| panic!("{text} is missing"));
        let last = history.versions().last().expect("a history has a version");

        // Assert
        assert_eq!(
            last.period.deletion.map(|date| date.to_string()).as_deref(),
            Some(deletion),
            "{text}"
        );
        assert!(
            last.replaced_by.contains(&code(replacement)),
            "{text} should name {replacement}: {:?}",
            last.replaced_by
        );
        let after = jiff::civil::date(2025, 6, 1);
        assert!(!history.as_of(after).standing.is_active(), "{text}");
    }
}

#[test]
fn every_add_on_names_primary_codes_that_exist() {
    // Arrange
    let registry = registry();
    let known: HashSet<CodeValue> = registry.histories().iter().map(CodeHistory::code).collect();

    for version in every_version(&registry) {
        // Act
        let missing: Vec<&CodeValue> = version
            .primary_codes
            .iter()
            .filter(|primary| !known.contains(primary))
            .collect();

        // Assert
        assert_eq!(
            version.add_on,
            !version.primary_codes.is_empty(),
            "{}: add-on and primary codes disagree",
            version.code
        );
        assert!(
            missing.is_empty(),
            "{}: unknown primaries {missing:?}",
            version.code
        );
    }
}

#[test]
fn every_replacement_exists() {
    // Arrange
    let registry = registry();
    let known: HashSet<CodeValue> = registry.histories().iter().map(CodeHistory::code).collect();

    for version in every_version(&registry) {
        // Act
        let missing: Vec<&CodeValue> = version
            .replaced_by
            .iter()
            .filter(|replacement| !known.contains(replacement))
            .collect();

        // Assert
        assert!(
            missing.is_empty(),
            "{}: unknown replacements {missing:?}",
            version.code
        );
        if !version.replaced_by.is_empty() {
            assert!(
                version.period.deletion.is_some(),
                "{} has replacements but no deletion date",
                version.code
            );
        }
    }
}

#[test]
fn short_names_fit_and_descriptors_are_sentences() {
    // Arrange
    let registry = registry();

    for version in every_version(&registry) {
        // Act
        let short_name_chars = version.short_name.chars().count();

        // Assert
        assert!(
            (1..=MAX_SHORT_NAME_CHARS).contains(&short_name_chars),
            "{}: short name {:?}",
            version.code,
            version.short_name
        );
        assert!(!version.descriptor.trim().is_empty(), "{}", version.code);
        assert!(
            version.descriptor.ends_with('.'),
            "{}: {:?}",
            version.code,
            version.descriptor
        );
    }
}

#[test]
fn every_code_has_a_place_in_the_hierarchy() {
    // Arrange
    let registry = registry();

    for version in every_version(&registry) {
        // Act
        let levels = [&version.section, &version.subsection, &version.heading];

        // Assert
        assert!(
            levels.iter().all(|level| !level.trim().is_empty()),
            "{}: {levels:?}",
            version.code
        );
    }
}

#[test]
fn no_two_versions_of_a_code_overlap() {
    // Arrange
    let registry = registry();

    for history in registry.histories() {
        // Act
        let versions = history.versions();

        // Assert
        for (index, earlier) in versions.iter().enumerate() {
            for later in &versions[index + 1..] {
                assert!(
                    !earlier.period.overlaps(&later.period),
                    "{}: {:?} overlaps {:?}",
                    history.code(),
                    earlier.period,
                    later.period
                );
            }
            if let (Some(effective), Some(deletion)) =
                (earlier.period.effective, earlier.period.deletion)
            {
                assert!(effective < deletion, "{}", history.code());
            }
        }
    }
}

#[test]
fn sunset_dates_are_only_on_category_three_codes() {
    // Arrange
    let registry = registry();

    for version in every_version(&registry) {
        // Act
        let has_sunset = version.sunset.is_some();

        // Assert
        if has_sunset {
            assert_eq!(
                version.code.form(),
                cptd::codes::CodeForm::CategoryIII,
                "{}",
                version.code
            );
        }
    }
}
