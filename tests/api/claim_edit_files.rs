//! Loading CMS's own claim-edit files in their published layouts: each kind
//! replaces its built-in extract, a bad file is refused naming its lines,
//! `cptd check` reads them offline, and SIGHUP swaps them in.

use std::path::{Path, PathBuf};

use cptd::{
    config::Config,
    pb::{CheckClaimRequest, FindingKind, Severity, claim_check_client::ClaimCheckClient},
};

use crate::{
    binary::{ServerProcess, run_to_end},
    claim_check::{check, claim, claim_on, line, of_kind, only, units},
    helpers::{connect, spawn_app_with},
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cms")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

fn loaded_config() -> Config {
    let mut config = Config::for_tests();
    config.edit_files.ncci_ptp = vec![
        fixture("ccipra-v311r0-f1.txt"),
        fixture("ccipra-v311r0-f2.txt"),
    ];
    config.edit_files.mue = Some(fixture("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv"));
    config.edit_files.add_on_edits = Some(fixture("add-on-code-edits-2026q3.csv"));
    config.edit_files.pfs = Some(fixture("PPRRVU26_JUL.csv"));
    config.edit_files.icd10cm = Some(fixture("icd10cm_order_2026.txt"));
    config
}

#[tokio::test]
async fn cms_ptp_files_honour_effective_and_deletion_dates_and_every_part_counts() {
    let mut app = spawn_app_with(loaded_config()).await;

    let before = check(
        &mut app.claim_check,
        claim_on("2024-12-31", vec![line("64493", &[]), line("64490", &[])]),
    )
    .await;
    let after = check(
        &mut app.claim_check,
        claim_on("2025-01-01", vec![line("64493", &[]), line("64490", &[])]),
    )
    .await;
    let deleted_last_day = check(
        &mut app.claim_check,
        claim_on("2024-12-31", vec![line("64483", &[]), line("64493", &[])]),
    )
    .await;
    let deleted = check(
        &mut app.claim_check,
        claim_on("2025-01-01", vec![line("64483", &[]), line("64493", &[])]),
    )
    .await;
    let second_part = check(
        &mut app.claim_check,
        claim_on("2025-01-01", vec![line("64635", &[]), line("64493", &[])]),
    )
    .await;
    let not_applicable = check(
        &mut app.claim_check,
        claim_on("2022-01-01", vec![line("64483", &[]), line("20610", &[])]),
    )
    .await;

    assert!(
        of_kind(&before, FindingKind::PtpPair).is_empty(),
        "{before:#?}"
    );
    let finding = only(&after, FindingKind::PtpPair);
    assert_eq!(finding.severity(), Severity::Deny);
    let source = finding.source.unwrap();
    assert!(source.file.ends_with("ccipra-v311r0-f1.txt"));
    assert_eq!(source.edition, "ccipra-v311r0-f1.txt");
    assert_eq!(source.row, 7);
    assert_eq!(
        only(&deleted_last_day, FindingKind::PtpPair).severity(),
        Severity::Deny
    );
    assert!(of_kind(&deleted, FindingKind::PtpPair).is_empty());
    let source = only(&second_part, FindingKind::PtpPair).source.unwrap();
    assert!(source.file.ends_with("ccipra-v311r0-f2.txt"));
    assert!(
        of_kind(&not_applicable, FindingKind::PtpPair).is_empty(),
        "indicator 9 is not in force"
    );
}

#[tokio::test]
async fn a_line_mue_denies_the_line_and_names_the_modifiers_for_more_units() {
    let mut app = spawn_app_with(loaded_config()).await;

    let over = check(
        &mut app.claim_check,
        claim(vec![units(line("20610", &["RT"]), 3)]),
    )
    .await;
    let split = check(
        &mut app.claim_check,
        claim(vec![
            units(line("20610", &["RT"]), 2),
            units(line("20610", &["LT"]), 2),
        ]),
    )
    .await;

    let finding = only(&over, FindingKind::Mue);
    assert_eq!(finding.severity(), Severity::Deny);
    assert_eq!(finding.rule, "MUE 20610: 2 unit(s), MAI 1");
    assert!(finding.bypassable);
    assert_eq!(
        finding.bypass_modifiers,
        ["76", "77", "59", "XE", "XS", "XP", "XU"]
    );
    assert!(finding.anatomic_modifiers_bypass);
    let source = finding.source.unwrap();
    assert_eq!(
        source.edition,
        "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv"
    );
    assert_eq!(source.row, 13);
    assert!(
        of_kind(&split, FindingKind::Mue).is_empty(),
        "a line MUE counts each line alone"
    );
}

#[tokio::test]
async fn the_pprrvu_add_on_and_icd10cm_files_drive_their_edits() {
    let mut app = spawn_app_with(loaded_config()).await;
    let mut visit = claim_on(
        "2025-03-01",
        vec![
            line("64483", &[]),
            line("99213", &[]),
            line("64615", &["50"]),
        ],
    );
    visit.diagnoses = vec!["M54.5".to_string()];

    let response = check(&mut app.claim_check, visit).await;
    let add_on = check(
        &mut app.claim_check,
        claim_on("2025-03-01", vec![line("77003", &[]), line("20610", &[])]),
    )
    .await;

    let global = only(&response, FindingKind::Modifier25);
    assert_eq!(global.source.unwrap().row, 13);
    assert!(
        only(&response, FindingKind::Bilateral)
            .rule
            .contains("indicator 2")
    );
    let header = only(&response, FindingKind::Diagnosis);
    assert!(
        header.message.contains("M54.50, M54.51, M54.59"),
        "{}",
        header.message
    );
    assert_eq!(header.source.unwrap().edition, "icd10cm_order_2026.txt");
    let finding = only(&add_on, FindingKind::AddOnWithoutPrimary);
    assert_eq!(
        finding.severity(),
        Severity::Review,
        "type 3 leaves it to the contractor"
    );
    assert!(
        finding.message.contains("62323, 64483"),
        "{}",
        finding.message
    );
}

#[tokio::test]
async fn the_response_names_the_loaded_editions() {
    let app = spawn_app_with(loaded_config()).await;
    let mut client = ClaimCheckClient::new(app.channel.clone());

    let response = client
        .check_claim(CheckClaimRequest {
            claim: Some(claim(vec![line("64483", &[])])),
        })
        .await
        .unwrap();

    let version = response.metadata().get("cptd-claim-edits-version").unwrap();
    assert_eq!(
        version.to_str().unwrap(),
        "ptp=ccipra-v311r0-f1.txt+ccipra-v311r0-f2.txt; \
         mue=MCR_MUE_PractitionerServices_Eff_07-01-2026.csv; \
         aoc=add-on-code-edits-2026q3.csv; pfs=PPRRVU26_JUL.csv; icd10cm=icd10cm_order_2026.txt"
    );
}

#[test]
fn a_refused_edit_file_stops_the_server_naming_every_bad_line() {
    let ptp = fixture_text("ccipra-refused.txt");
    let mue = fixture_text("MCR_MUE_refused.csv");

    let (status, _, stderr) = run_to_end(&[
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--ncci-ptp",
        &ptp,
        "--mue",
        &mue,
    ]);

    assert!(!status.success());
    for expected in [
        format!("{ptp}:7: Effective Date"),
        format!("{ptp}:8: Column 2"),
        format!("{ptp}:9: modifier indicator"),
        format!("{mue}:12: MUE value"),
        format!("{mue}:13: MUE adjudication indicator"),
    ] {
        assert!(stderr.contains(&expected), "{expected}: {stderr}");
    }
}

#[test]
fn check_reads_the_edit_files_offline() {
    let good = [
        "check",
        "--ncci-ptp",
        &fixture_text("ccipra-v311r0-f1.txt"),
        "--ncci-ptp",
        &fixture_text("ccipra-v311r0-f2.txt"),
        "--mue",
        &fixture_text("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv"),
        "--pfs",
        &fixture_text("PPRRVU26_JUL.csv"),
        "--icd10cm",
        &fixture_text("icd10cm_order_2026.txt"),
        "--add-on-edits",
        &fixture_text("add-on-code-edits-2026q3.csv"),
    ]
    .map(str::to_string);
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let refused = fixture_text("ccipra-refused.txt");

    let (good_status, good_out, good_err) = run_to_end(&good);
    let (bad_status, _, bad_err) = run_to_end(&["check", "--ncci-ptp", &refused]);

    assert!(good_status.success(), "{good_err}");
    assert!(
        good_out.starts_with("ok: 5 PTP pairs, 4 MUEs"),
        "{good_out}"
    );
    assert!(!bad_status.success());
    assert!(
        bad_err.contains(&format!("{refused}:8: Column 2")),
        "{bad_err}"
    );
}

#[tokio::test]
async fn sighup_reloads_the_edit_files_and_a_bad_reload_keeps_them() {
    let directory = tempfile::tempdir().unwrap();
    let mue = directory.path().join("mue.csv");
    std::fs::copy(
        fixture("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv"),
        &mue,
    )
    .unwrap();
    let mut server = ServerProcess::start(&["--mue", mue.to_str().unwrap()]);
    let mut client = ClaimCheckClient::new(connect(server.address).await);
    let two_units = || claim(vec![units(line("20552", &[]), 2)]);
    let first = check(&mut client, two_units()).await;

    let replaced = std::fs::read_to_string(&mue)
        .unwrap()
        .replace("20552,1,1 Line Edit", "20552,3,1 Line Edit");
    std::fs::write(&mue, replaced).unwrap();
    server.signal("HUP");
    server.wait_for_log(|line| line.contains("claim edits reloaded"));
    let reloaded = check(&mut client, two_units()).await;
    std::fs::write(&mue, "not an MUE file\n").unwrap();
    server.signal("HUP");
    server.wait_for_log(|line| line.contains("claim edit reload refused"));
    let kept = check(&mut client, two_units()).await;

    assert_eq!(only(&first, FindingKind::Mue).severity(), Severity::Deny);
    assert!(of_kind(&reloaded, FindingKind::Mue).is_empty());
    assert!(of_kind(&kept, FindingKind::Mue).is_empty());
}

#[test]
fn edit_files_are_read_only_when_regular_and_under_the_size_cap() {
    let directory = tempfile::tempdir().unwrap();
    let oversized = fixture_text("ccipra-v311r0-f1.txt");

    let (device, _, device_err) = run_to_end(&["check", "--ncci-ptp", "/dev/zero"]);
    let (folder, _, folder_err) =
        run_to_end(&["check", "--mue", directory.path().to_str().unwrap()]);
    let (large, _, large_err) = run_to_end(&[
        "check",
        "--max-data-file-size",
        "16",
        "--ncci-ptp",
        &oversized,
    ]);

    assert!(
        !device.success() && device_err.contains("not a regular file"),
        "{device_err}"
    );
    assert!(
        !folder.success() && folder_err.contains("not a regular file"),
        "{folder_err}"
    );
    assert!(
        !large.success() && large_err.contains("--max-data-file-size"),
        "{large_err}"
    );
}
