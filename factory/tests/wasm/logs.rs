//! Logs: OpenWhisk's line format, order across streams, and the log limit (which never costs the
//! result).

use factory::Status;
use factory::limits::BYTES_PER_MB;
use factory::outcome::messages;
use serde_json::json;

use super::*;

#[tokio::test]
async fn test_logs_are_formatted_and_in_order_across_streams() {
    let factory = factory_with(config());
    let logs = deploy(&factory, "logs").await;
    let outcome = logs.run(json!({"n": 3})).await;
    assert_eq!(outcome.status, Status::Success);
    assert_eq!(outcome.result, Some(json!({"lines": 3})));
    assert_eq!(
        log_texts(&outcome),
        [
            "stdout: stdout line 0",
            "stderr: stderr line 0",
            "stdout: stdout line 1",
            "stderr: stderr line 1",
            "stdout: stdout line 2",
            "stderr: stderr line 2",
        ]
    );
    // Each line carries the docker json-file time: exactly 30 characters, nine fraction digits,
    // in order, within the activation.
    let mut previous = String::new();
    for line in &outcome.logs {
        let time = &line[..30];
        assert_eq!(time.len(), 30);
        assert_eq!(&line[30..31], " ");
        assert_eq!(time.as_bytes()[19], b'.');
        assert!(
            time[20..29].bytes().all(|b| b.is_ascii_digit()) && time.ends_with('Z'),
            "{line}"
        );
        assert!(
            time >= previous.as_str(),
            "times out of order: {previous} then {time}"
        );
        previous = time.to_string();
    }
    let start = factory::logs::format_time(outcome.start);
    let end = factory::logs::format_time(outcome.end);
    assert!(start.as_str() <= previous.as_str() && previous <= end);
}

#[tokio::test]
async fn test_flood_past_the_log_limit_still_returns_its_result() {
    let factory = factory_with(config());
    let limits = Limits {
        logs: 1,
        ..Limits::default()
    };
    let flood = deploy_with(&factory, "flood", limits).await;
    // Obeyed: exactly 1 MB of lines (newlines included) fits the 1 MB limit, all of it.
    let outcome = flood.run(json!({"mb": 1})).await;
    assert_eq!(outcome.result, Some(json!({"done": true})));
    let texts = log_texts(&outcome);
    let bytes: u64 = texts
        .iter()
        .map(|line| line.len() as u64 - "stdout: ".len() as u64 + 1)
        .sum();
    assert_eq!(bytes, BYTES_PER_MB);
    assert!(
        !texts
            .iter()
            .any(|line| line.contains("Logs were truncated"))
    );

    // Violated: 3 MB of 100-byte lines against 1 MB.
    let outcome = flood.run(json!({"mb": 3})).await;
    assert_eq!(outcome.status, Status::Success, "{:?}", outcome.result);
    assert_eq!(outcome.result, Some(json!({"done": true})));
    // Truncated is not lost: the logs were captured whole up to the limit, the container is fine.
    assert_eq!(outcome.fault, None);
    let texts = log_texts(&outcome);
    let notice = texts.last().expect("the truncation notice");
    assert_eq!(
        notice,
        &format!("stderr: {}", messages::truncated_logs(BYTES_PER_MB))
    );
    assert_eq!(
        texts
            .iter()
            .filter(|line| line.contains("Logs were truncated"))
            .count(),
        1
    );
    // Everything before the notice is flood output, in order, within the limit.
    let kept = &texts[..texts.len() - 1];
    let bytes: u64 = kept
        .iter()
        .map(|line| line.len() as u64 - "stdout: ".len() as u64 + 1)
        .sum();
    assert!(bytes <= BYTES_PER_MB, "{bytes} bytes kept");
    assert!(bytes > BYTES_PER_MB - 200, "only {bytes} bytes kept");
    // flood buffers each stream in 64 KiB blocks, so streams interleave by block; within a stream
    // the lines are in order.
    assert!(
        kept[0].starts_with("stdout: flood stdout line 0 ."),
        "{}",
        kept[0]
    );
    for stream in ["stdout", "stderr"] {
        let numbers: Vec<u64> = kept
            .iter()
            .filter_map(|line| line.strip_prefix(&format!("{stream}: flood {stream} line ")))
            .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(numbers.len() > 1000, "{stream}: {} lines", numbers.len());
        assert!(
            numbers.windows(2).all(|pair| pair[0] + 2 == pair[1]),
            "{stream} lines out of order"
        );
    }
}

#[tokio::test]
async fn test_log_limit_zero_keeps_only_the_notice() {
    let factory = factory_with(config());
    let limits = Limits {
        logs: 0,
        ..Limits::default()
    };
    let logs = deploy_with(&factory, "logs", limits).await;
    let outcome = logs.run(json!({"n": 2})).await;
    assert_eq!(outcome.result, Some(json!({"lines": 2})));
    assert_eq!(
        log_texts(&outcome),
        [format!("stderr: {}", messages::truncated_logs(0))]
    );
    // Obeyed: an action that logs nothing gets no notice.
    let echo = deploy_with(&factory, "echo", limits).await;
    let outcome = echo.run(json!({"quiet": true})).await;
    assert_eq!(outcome.result, Some(json!({"quiet": true})));
    assert!(outcome.logs.is_empty());
}
