//! The command line: config checking and its errors.

use crate::daemon::BIN;
use crate::netns::unique;

fn check(text: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(unique("c"));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("t.toml");
    std::fs::write(&f, text).unwrap();
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_the_documented_default() {
    let (code, out, err) = check(include_str!("../../config/trafficalerted.toml"));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("configuration OK"));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["traffic"]["interval"], "170s");
}

#[test]
fn check_config_names_key_line_and_allowed_values() {
    let (code, _, err) = check("[capture]\nsnaplen = 128\ndirection = \"sideways\"\n");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("line 3") && err.contains("capture.direction"),
        "{err}"
    );
    assert!(err.contains("\"ingress\", \"both\""), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn missing_config_file_is_an_error_naming_it() {
    let out = std::process::Command::new(BIN)
        .args(["-c", "/nonexistent/trafficalerted.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/trafficalerted.toml"));
}

#[test]
fn convert_config_turns_an_original_conf_into_toml() {
    let dir = std::env::temp_dir().join(unique("c"));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("TrafficAlerted.conf");
    std::fs::write(
        &old,
        "# Configuration file for TrafficAlerted\nTrafficInterval: 300\nByteLimit: 1M\nNoDestinations: false\nChartMinBytes: 10M\nExcludedInterfaces: \"lo\",\"dummy0\"\nContactedIPsAnalyze: true\nNumberContactedIPs: 15\nAnalyzePorts: false\nNumContactedPorts: 100\nPortInterval: 600\nMystery: 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("convert-config")
        .arg(&old)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mystery"));
    let (code, json, err) = check(&toml);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["traffic"]["interval"], "5m");
    assert_eq!(v["traffic"]["byte_limit"], 1_000_000);
    assert_eq!(
        v["capture"]["exclude_interfaces"],
        serde_json::json!(["lo", "dummy0"])
    );
    assert_eq!(v["scan"]["port_scan"], false);
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "ByteLimit: lots\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("convert-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: ByteLimit"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check-config | grep -q` and `default-config | head` are how operators and
/// scripts read these answers; a reader that stops early must not turn into
/// a panic and a failed pipeline.
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    for args in [&["default-config"][..], &["check-config", "/dev/null"][..]] {
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closing the pipe unread: every write the command makes fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
