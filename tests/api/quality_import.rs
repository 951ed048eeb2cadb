//! ImportEncounters: a client stream, bad encounters rejected alone and named.

use cptd::pb;

use crate::{
    helpers::spawn_app,
    quality_fixtures::{cancer_visit, import, performance},
};

#[tokio::test]
async fn a_bad_encounter_in_the_middle_is_rejected_alone() {
    let mut app = spawn_app().await;
    let mut messages: Vec<pb::ImportEncountersRequest> = (0..200)
        .map(|index| import(cancer_visit(&format!("imp-{index}"), "99213 1125F")))
        .collect();
    messages[100] = import(cancer_visit("imp-bad", "99213 1125F-XYZ"));
    messages[150].encounter.as_mut().unwrap().patient_id.clear();
    // A resend inside the same stream is a duplicate; a changed one conflicts.
    messages.push(import(cancer_visit("imp-3", "99213 1125F")));
    messages.push(import(cancer_visit("imp-4", "99213 1126F")));

    let summary = app
        .quality_measures
        .import_encounters(tokio_stream::iter(messages))
        .await
        .expect("the import answers a summary")
        .into_inner();

    assert_eq!(summary.accepted, 198);
    assert_eq!(summary.duplicates, 1);
    assert_eq!(summary.rejected, 3);
    let named: Vec<(i64, &str)> = summary
        .errors
        .iter()
        .map(|error| (error.index, error.encounter_id.as_str()))
        .collect();
    assert_eq!(named, [(100, "imp-bad"), (150, "imp-150"), (201, "imp-4")]);
    assert!(
        summary.errors[0]
            .message
            .contains("encounter.codes[1].modifiers[0]")
    );
    assert!(summary.errors[1].message.contains("encounter.patient_id"));
    assert!(!summary.errors[1].message.contains("patient-of"));
    assert!(summary.errors[2].message.contains("different content"));

    let report = app
        .quality_measures
        .get_performance(performance("pain-intensity-quantified"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.eligible, report.met), (198, 198));
}

#[tokio::test]
async fn an_empty_stream_answers_zeros() {
    let mut app = spawn_app().await;
    let summary = app
        .quality_measures
        .import_encounters(tokio_stream::iter(Vec::<pb::ImportEncountersRequest>::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary, pb::ImportEncountersResponse::default());
}

#[tokio::test]
async fn importing_again_counts_duplicates_not_encounters() {
    let mut app = spawn_app().await;
    let messages: Vec<pb::ImportEncountersRequest> = (0..300)
        .map(|index| {
            import(cancer_visit(
                &format!("again-{index}"),
                "99213 1125F 0521F-8P",
            ))
        })
        .collect();

    let first = app
        .quality_measures
        .import_encounters(tokio_stream::iter(messages.clone()))
        .await
        .unwrap()
        .into_inner();
    let second = app
        .quality_measures
        .import_encounters(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();

    assert_eq!((first.accepted, first.duplicates), (300, 0));
    assert_eq!((second.accepted, second.duplicates), (0, 300));
    let report = app
        .quality_measures
        .get_performance(performance("pain-plan-of-care"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((report.eligible, report.not_met), (300, 300));
}

/// A thread's name and nice value, from its `stat` file under `/proc`.
#[cfg(target_os = "linux")]
fn name_and_nice(stat: &std::path::Path) -> Option<(String, i64)> {
    let stat = std::fs::read_to_string(stat).ok()?;
    let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
    // nice is field 19 of stat, the 17th after the name.
    let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
    Some((name.to_string(), nice))
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn imports_are_prepared_below_the_priority_of_look_ups() {
    let mut app = spawn_app().await;
    let messages: Vec<pb::ImportEncountersRequest> = (0..500)
        .map(|index| import(cancer_visit(&format!("nice-{index}"), "99213 1125F")))
        .collect();
    let summary = app
        .quality_measures
        .import_encounters(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, 500);

    let (_, own) = name_and_nice("/proc/thread-self/stat".as_ref()).expect("own stat");
    let import_threads: Vec<i64> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| name_and_nice(&task.ok()?.path().join("stat")))
        .filter(|(name, _)| name.starts_with("cptd-import-"))
        .map(|(_, nice)| nice)
        .collect();
    assert!(!import_threads.is_empty(), "the server runs import threads");
    let expected = own.max(i64::from(cptd::background::BACKGROUND_NICE));
    assert!(
        import_threads.iter().all(|nice| *nice == expected),
        "import threads at {import_threads:?}, expected {expected}"
    );
}
