//! The command line: config checking and its errors.

use crate::daemon::BIN;
use crate::netns::unique;

/// `trafficalerted COMMAND FILE` on a file holding `text`: exit code,
/// standard output, standard error.
fn on_file(command: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(unique("c"));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("t.conf");
    std::fs::write(&f, text).unwrap();
    let out = std::process::Command::new(BIN)
        .arg(command)
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

fn check(text: &str) -> (Option<i32>, String, String) {
    on_file("check-config", text)
}

fn convert(text: &str) -> (Option<i32>, String, String) {
    on_file("convert-config", text)
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
    let (code, toml, err) = convert(
        "# Configuration file for TrafficAlerted\nTrafficInterval: 300\nByteLimit: 1M\nNoDestinations: false\nChartMinBytes: 10M\nExcludedInterfaces: \"lo\",\"dummy0\"\nContactedIPsAnalyze: true\nNumberContactedIPs: 15\nAnalyzePorts: false\nNumContactedPorts: 100\nPortInterval: 600\nMystery: 1\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Mystery"));
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
    let (code, _, err) = convert("ByteLimit: lots\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("line 1: ByteLimit"), "{err}");
}

/// `check-config | grep -q` and `default-config | head` are how operators and
/// scripts read these answers; a reader that stops early must not turn into
/// a panic and a failed pipeline.
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let dir = std::env::temp_dir().join(unique("pipe"));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_string_lossy().into_owned();
    for args in [&["default-config"][..], &["check-config", &empty][..]] {
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
    let _ = std::fs::remove_dir_all(&dir);
}

/// A FIFO, a device or a directory named as a file is refused at once with
/// one line, never read until a writer comes or memory runs out.
#[test]
fn special_files_are_refused_at_once() {
    let dir = std::env::temp_dir().join(unique("sp"));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let zero = dir.join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo_s = fifo.to_string_lossy().into_owned();
    let zero_s = zero.to_string_lossy().into_owned();
    let pcap = dir.join("empty.pcap");
    // A pcap header and nothing else.
    let mut hdr = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&pcap, hdr).unwrap();
    let pcap_s = pcap.to_string_lossy().into_owned();
    for (args, what) in [
        (vec!["check-config", fifo_s.as_str()], "FIFO"),
        (vec!["check-config", zero_s.as_str()], "character device"),
        (vec!["-c", fifo_s.as_str(), "default-config"], ""),
        (
            vec![
                "replay",
                "--no-progress",
                "--history",
                fifo_s.as_str(),
                pcap_s.as_str(),
            ],
            "FIFO",
        ),
    ] {
        let started = std::time::Instant::now();
        let mut child = std::process::Command::new(BIN)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut code = None;
        while started.elapsed() < std::time::Duration::from_secs(5) {
            if let Some(s) = child.try_wait().unwrap() {
                code = Some(s.code());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if code.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(code.is_some(), "{args:?} hung");
        if what.is_empty() {
            continue;
        }
        assert_ne!(code, Some(Some(0)), "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
        let errors: Vec<&str> = err.lines().filter(|l| !l.contains(" INFO ")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: one line: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Legacy files as operators write them: a key given twice, a line without
/// its colon, a control character in an interface name. Errors name the
/// user's own line; what converts is valid.
#[test]
fn legacy_conversion_names_the_users_line_and_writes_valid_toml() {
    let (code, _, err) =
        convert("# TrafficAlerted\nTrafficInterval: 300\nByteLimit: 1M\nTrafficInterval: 60\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 4") && err.contains("TrafficInterval") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let (code, _, err) = convert("ByteLimit: 1M\nTrafficInterval 300\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let (code, toml, err) =
        convert("ByteLimit: 1M\nExcludedInterfaces: \"lo\",\"e\u{1}th\u{7f}0\"\n");
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = check(&toml);
    assert_eq!(code, Some(0), "the converted file is valid: {err}\n{toml}");
}

/// A count from the config that would allocate without bound (the history
/// reader once listed a name per kept file) is refused with its key and
/// line before anything runs.
#[test]
fn a_history_keep_of_four_billion_is_refused_with_key_and_line() {
    let (code, _, err) =
        check("[alerts]\nhistory_max_size = \"64KiB\"\nhistory_keep = 4294967295\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("alerts.history_keep") && err.contains("line 3"),
        "{err}"
    );
}
