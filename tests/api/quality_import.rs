//! ImportEncounters: a client stream, bad encounters rejected alone and named.

use cptd::{config::Config, pb};
use prost::{Message, bytes::BufMut};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Status,
    codec::{Codec, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};
use tonic_prost::ProstDecoder;

use crate::{
    helpers::{HANG_GUARD, spawn_app},
    quality_fixtures::{cancer_visit, import, import_all, performance_report},
};

/// Sends request messages as the bytes given, well-formed or not, and
/// decodes answers of type `A`.
struct RawRequestCodec<A>(std::marker::PhantomData<A>);

impl<A> Default for RawRequestCodec<A> {
    fn default() -> Self {
        RawRequestCodec(std::marker::PhantomData)
    }
}

impl<A: Message + Default + Send + 'static> Codec for RawRequestCodec<A> {
    type Encode = Vec<u8>;
    type Decode = A;
    type Encoder = RawRequestCodec<A>;
    type Decoder = ProstDecoder<A>;

    fn encoder(&mut self) -> Self::Encoder {
        RawRequestCodec::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

impl<A> Encoder for RawRequestCodec<A> {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buffer.put_slice(&item);
        Ok(())
    }
}

/// Imports `messages`, each sent exactly as its bytes.
async fn import_raw(
    app: &crate::helpers::TestApp,
    messages: Vec<Vec<u8>>,
) -> Result<pb::ImportEncountersResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/cpt.v1.QualityMeasures/ImportEncounters");
    grpc.client_streaming(
        tonic::Request::new(tokio_stream::iter(messages)),
        path,
        RawRequestCodec::<pb::ImportEncountersResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_message_that_is_not_protobuf_ends_the_import_and_a_resend_of_the_fixed_one_completes_it()
{
    let app = spawn_app().await;
    let good = |id: &str| import(cancer_visit(id, "99213 1125F")).encode_to_vec();
    // A field number 0 key: no protobuf message starts this way.
    let broken = vec![0x00, 0x01, 0x02];

    let refused = import_raw(&app, vec![good("raw-0"), broken, good("raw-2")])
        .await
        .expect_err("a message that is not protobuf ends the import");

    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("message 1 of the import")
            && refused.message().contains("not a valid protobuf message"),
        "{}",
        refused.message()
    );
    let summary = import_raw(&app, vec![good("raw-0"), good("raw-1"), good("raw-2")])
        .await
        .expect("the fixed import answers a summary");
    assert_eq!(summary.accepted + summary.duplicates, 3);
    assert_eq!(summary.rejected, 0);
    let mut client = app.quality_measures.clone();
    let report = performance_report(&mut client, "pain-intensity-quantified").await;
    assert_eq!(report.eligible_population, 3, "each encounter counted once");
}

#[tokio::test]
async fn a_unary_request_that_is_not_protobuf_is_invalid_argument() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/cpt.v1.CodeLookup/GetCode");
    // Field 1 (code) as a string whose bytes are not UTF-8.
    let not_utf8 = vec![0x0a, 0x02, 0xff, 0xfe];

    let refused = grpc
        .unary(
            tonic::Request::new(not_utf8),
            path,
            RawRequestCodec::<pb::Code>::default(),
        )
        .await
        .expect_err("bad bytes are refused");

    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
}

#[tokio::test]
async fn an_import_message_over_4_mib_is_refused_and_the_server_keeps_answering() {
    let mut app = spawn_app().await;
    let mut huge = import(cancer_visit("huge", "99213 1125F"));
    huge.encounter.as_mut().unwrap().diagnoses = vec!["G".repeat(4 * 1024 * 1024 + 1)];

    let refused = import_raw(&app, vec![huge.encode_to_vec()])
        .await
        .expect_err("a message over 4 MiB is refused");
    let next = app
        .quality_measures
        .import_encounters(tokio_stream::iter(vec![import(cancer_visit(
            "after-huge",
            "99213 1125F",
        ))]))
        .await;

    assert!(
        !matches!(
            refused.code(),
            Code::Ok | Code::Internal | Code::Unknown | Code::Unavailable
        ),
        "{refused:?}"
    );
    assert_eq!(
        next.expect("the server keeps answering")
            .into_inner()
            .accepted,
        1
    );
}

#[tokio::test]
async fn an_import_cut_off_mid_stream_answers_after_what_it_handed_over_is_settled() {
    let mut app = spawn_app().await;
    // Good encounters, enough that many chunks are on their way to the writer
    // when the message over the size limit ends the stream.
    let good = 20_000;
    let mut messages: Vec<Vec<u8>> = (0..good)
        .map(|index| import(cancer_visit(&format!("cut-{index}"), "99213 1125F")).encode_to_vec())
        .collect();
    let mut huge = import(cancer_visit("huge", "99213 1125F"));
    huge.encounter.as_mut().unwrap().diagnoses = vec!["G".repeat(4 * 1024 * 1024 + 1)];
    messages.push(huge.encode_to_vec());

    import_raw(&app, messages)
        .await
        .expect_err("the message over 4 MiB ends the import");
    let counted_at_the_answer =
        performance_report(&mut app.quality_measures, "pain-intensity-quantified")
            .await
            .eligible_population;
    // The writer takes bulk writes in order, so once a later import is
    // answered, nothing of the earlier one can still be on its way.
    let later = import_all(
        &mut app.quality_measures,
        vec![import(cancer_visit("after-cut", "99213 1125F"))],
    )
    .await;
    assert_eq!(later.accepted, 1);
    let counted_after = performance_report(&mut app.quality_measures, "pain-intensity-quantified")
        .await
        .eligible_population;

    assert!(counted_at_the_answer <= good, "{counted_at_the_answer}");
    assert_eq!(
        counted_after,
        counted_at_the_answer + 1,
        "part of the cut-off import was stored after its answer"
    );
}

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

    let summary = import_all(&mut app.quality_measures, messages).await;

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

    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!((report.eligible_population, report.met), (198, 198));
}

#[tokio::test]
async fn a_long_stream_is_recorded_in_stream_order() {
    // Chunks are prepared on several threads at once; what the store sees must
    // still be the stream's order, or a resend could land before its original.
    // Each block of originals is followed at once by a block of their resends:
    // identical, changed, and changed to replace. Blocks of 700 are split by
    // chunk boundaries wherever those fall, so some resends are in a later
    // chunk than their originals.
    let mut app = spawn_app().await;
    let (blocks, block) = (4, 700);
    let mut messages = Vec::new();
    let mut conflicts = Vec::new();
    let (mut identical, mut replaced) = (0, 0);
    for first in (0..blocks).map(|number| number * block) {
        let id = |offset: usize| format!("order-{}", first + offset);
        messages.extend((0..block).map(|offset| import(cancer_visit(&id(offset), "99213 1125F"))));
        for offset in 0..block {
            let message = match offset % 10 {
                0 => {
                    conflicts.push((messages.len() as i64, id(offset)));
                    import(cancer_visit(&id(offset), "99213 1126F"))
                }
                1 => {
                    replaced += 1;
                    pb::ImportEncountersRequest {
                        replace: true,
                        ..import(cancer_visit(&id(offset), "99213 1126F"))
                    }
                }
                _ => {
                    identical += 1;
                    import(cancer_visit(&id(offset), "99213 1125F"))
                }
            };
            messages.push(message);
        }
    }

    let summary = import_all(&mut app.quality_measures, messages).await;

    let originals = (blocks * block) as i64;
    assert_eq!(summary.accepted, originals + replaced);
    assert_eq!(summary.duplicates, identical);
    assert_eq!(summary.rejected, conflicts.len() as i64);
    let named: Vec<(i64, String)> = summary
        .errors
        .iter()
        .map(|error| (error.index, error.encounter_id.clone()))
        .collect();
    assert_eq!(
        named, conflicts,
        "conflicts are the resends, not the originals"
    );
    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!(
        report.eligible_population, originals,
        "each encounter counted once"
    );
}

#[tokio::test]
async fn a_paused_stream_has_what_it_sent_so_far_recorded_before_it_ends() {
    // A client feeding encounters as they come, far fewer than a chunk, and
    // keeping the stream open: they are counted while it is open, not held
    // back until it ends or a chunk fills.
    let mut app = spawn_app().await;
    let (sender, receiver) = tokio::sync::mpsc::channel(8);
    let mut client = app.quality_measures.clone();
    let call = tokio::spawn(async move {
        client
            .import_encounters(ReceiverStream::new(receiver))
            .await
            .map(tonic::Response::into_inner)
    });
    for index in 0..5 {
        let encounter = cancer_visit(&format!("trickle-{index}"), "99213 1125F");
        sender
            .send(import(encounter))
            .await
            .expect("the stream is open");
    }

    let counted = async {
        loop {
            let report =
                performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
            if report.eligible_population == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(HANG_GUARD, counted)
        .await
        .expect("the encounters sent so far are counted while the stream is open");
    assert!(!call.is_finished(), "the import is still open");

    sender
        .send(import(cancer_visit("trickle-5", "99213 1125F")))
        .await
        .expect("the stream is open");
    drop(sender);
    let summary = call.await.expect("joined").expect("the import answers");
    assert_eq!((summary.accepted, summary.rejected), (6, 0));
    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!(report.eligible_population, 6);
}

#[tokio::test]
async fn an_empty_stream_answers_zeros() {
    let mut app = spawn_app().await;
    let summary = import_all(
        &mut app.quality_measures,
        Vec::<pb::ImportEncountersRequest>::new(),
    )
    .await;
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

    let first = import_all(&mut app.quality_measures, messages.clone()).await;
    let second = import_all(&mut app.quality_measures, messages).await;

    assert_eq!((first.accepted, first.duplicates), (300, 0));
    assert_eq!((second.accepted, second.duplicates), (0, 300));
    let report = performance_report(&mut app.quality_measures, "pain-plan-of-care").await;
    assert_eq!((report.eligible_population, report.not_met), (300, 300));
}

#[tokio::test]
async fn imports_beyond_the_limit_are_refused_and_the_running_ones_finish() {
    let app = spawn_app().await;
    let limit = Config::for_tests().max_concurrent_imports as usize;
    let extra = 3;
    // Streams left open, one encounter sent on each, so every admitted
    // import stays running until its sender is dropped.
    let mut senders = Vec::new();
    let mut calls = tokio::task::JoinSet::new();
    for number in 0..limit + extra {
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        sender
            .send(import(cancer_visit(
                &format!("held-{number}"),
                "99213 1125F",
            )))
            .await
            .expect("the stream is open");
        senders.push(sender);
        let mut client = app.quality_measures.clone();
        calls.spawn(async move {
            client
                .import_encounters(ReceiverStream::new(receiver))
                .await
                .map(tonic::Response::into_inner)
        });
    }

    // Refused imports answer at once; admitted ones wait for their streams.
    let mut refused = Vec::new();
    while refused.len() < extra {
        let answer = tokio::time::timeout(HANG_GUARD, calls.join_next())
            .await
            .expect("the refusals came")
            .expect("a call is left")
            .expect("joined");
        refused.push(answer.expect_err("only refusals answer before the streams end"));
    }
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status
                .message()
                .contains(&format!("at most {limit} imports")),
            "{status:?}"
        );
    }

    drop(senders);
    let mut accepted = 0;
    while let Some(answer) = calls.join_next().await {
        accepted += answer
            .expect("joined")
            .expect("admitted imports finish")
            .accepted;
    }
    assert_eq!(accepted, limit as i64);

    // Their permits are back: a new import runs.
    let summary = app
        .quality_measures
        .clone()
        .import_encounters(tokio_stream::iter(vec![import(cancer_visit(
            "after",
            "99213 1125F",
        ))]))
        .await
        .expect("an import after the others runs")
        .into_inner();
    assert_eq!(summary.accepted, 1);
}

/// Checks that an import ended by a deadline or timeout, without a summary.
fn assert_cut_off(answer: Result<pb::ImportEncountersResponse, Status>) {
    let status = answer.expect_err("a cut-off import has no summary");
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
}

#[tokio::test]
async fn imports_cut_off_by_their_deadline_end_free_their_places_and_can_be_resent() {
    let limit = Config::for_tests().max_concurrent_imports as usize;
    // As many imports as may run at once, each sending 70 encounters and
    // then going quiet, with a deadline of 300 ms: the server must end them
    // when it passes, not hold their places until the stream ends.
    let mut app = spawn_app().await;
    let stream_of = |number: usize| -> Vec<pb::ImportEncountersRequest> {
        (0..70)
            .map(|index| {
                import(cancer_visit(
                    &format!("late-{number}-{index}"),
                    "99213 1125F",
                ))
            })
            .collect()
    };
    let mut senders = Vec::new();
    let mut calls = tokio::task::JoinSet::new();
    for number in 0..limit {
        let (sender, receiver) = tokio::sync::mpsc::channel(80);
        for message in stream_of(number) {
            sender.send(message).await.expect("the stream is open");
        }
        senders.push(sender);
        let mut request = tonic::Request::new(ReceiverStream::new(receiver));
        request.set_timeout(std::time::Duration::from_millis(300));
        let mut client = app.quality_measures.clone();
        calls.spawn(async move { client.import_encounters(request).await });
    }
    while let Some(answer) = tokio::time::timeout(HANG_GUARD, calls.join_next())
        .await
        .expect("the deadlines ended the imports")
    {
        assert_cut_off(answer.expect("joined").map(tonic::Response::into_inner));
    }
    drop(senders);

    // Every place is free again: all of them sent again at once are taken,
    // storing what the first sends did not and counting each encounter once.
    let mut resends = tokio::task::JoinSet::new();
    for number in 0..limit {
        let mut client = app.quality_measures.clone();
        let messages = stream_of(number);
        resends.spawn(async move { import_all(&mut client, messages).await });
    }
    while let Some(summary) = resends.join_next().await {
        let summary = summary.expect("joined");
        assert_eq!(
            (summary.accepted + summary.duplicates, summary.rejected),
            (70, 0)
        );
    }
    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!(report.eligible_population, 70 * limit as i64);
}

#[tokio::test]
async fn an_import_without_a_deadline_is_ended_by_the_servers_request_timeout() {
    let mut config = cptd::config::Config::for_tests();
    config.request_timeout = std::time::Duration::from_millis(300);
    let app = crate::helpers::spawn_app_with(config).await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(import(cancer_visit("no-deadline", "99213 1125F")))
        .await
        .expect("the stream is open");
    let mut client = app.quality_measures.clone();
    let answer = tokio::time::timeout(
        HANG_GUARD,
        client.import_encounters(ReceiverStream::new(receiver)),
    )
    .await
    .expect("the server's timeout ended the import");
    assert_cut_off(answer.map(tonic::Response::into_inner));
    drop(sender);
}
