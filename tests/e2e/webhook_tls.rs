//! Webhooks that reach real receivers: an HTTPS receiver with its own CA
//! (made by openssl here) gets the alerts when the daemon trusts that CA,
//! over one kept connection; without it the certificate is refused; a
//! redirect is refused, not followed.

use std::process::Stdio;
use std::time::Duration;

use crate::daemon::Daemon;
use crate::netns::{Topology, require, unique, wait_until};
use crate::traffic::{trafgen, udp4};

const RECEIVER: &str = r#"
import http.server, ssl, sys
port, out, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(out, "ab") as f:
            f.write(b"%d " % self.client_address[1] + body + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(url: &str, ca: Option<&str>) -> String {
    format!(
        r#"
[traffic]
interval = "4s"
byte_limit = "1M"
[alerts]
hold_down = "2s"
[alerts.webhook]
url = "{url}"
retries = 0
{}
"#,
        ca.map(|c| format!("ca_file = {c:?}")).unwrap_or_default()
    )
}

/// 4 MB from 10.1.0.66: a traffic alert, closed 2 s after.
fn burst(t: &Topology) {
    let mac = t.rtr.mac(&t.r0);
    trafgen(
        &t.gen_ns,
        &t.g0,
        4000,
        10,
        &udp4(&mac, "10.1.0.66", "10.2.0.2", 1000),
    );
}

#[test]
fn an_https_receiver_with_its_own_ca_gets_the_alerts_and_redirects_are_refused() {
    require(&["openssl", "python3", "trafgen", "ethtool"]);
    let dir = std::env::temp_dir().join(unique("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=trafficalerted test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&dir, &ca);
    let mut csr = vec!["req"];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&[
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&dir, &csr);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
    let d_s = dir.to_string_lossy().into_owned();
    std::fs::write(dir.join("receiver.py"), RECEIVER).unwrap();
    let t = Topology::new();
    let got = format!("{d_s}/got");
    let _rx = t.rtr.spawn(
        &[
            "python3",
            &format!("{d_s}/receiver.py"),
            "8443",
            &got,
            &format!("{d_s}/srv.pem"),
            &format!("{d_s}/srv.key"),
        ],
        Stdio::null(),
        Stdio::null(),
    );
    wait_until(Duration::from_secs(10), || {
        t.rtr.tcp_open("127.0.0.1:8443").then_some(())
    })
    .expect("receiver listening");
    let ca_pem = format!("{d_s}/ca.pem");

    // Trusting the receiver's CA: the opening and the closing arrive, over
    // one connection.
    let d = Daemon::start(
        &t.rtr,
        &config("https://127.0.0.1:8443/hook", Some(&ca_pem)),
    );
    burst(&t);
    let lines = wait_until(Duration::from_secs(20), || {
        let s = std::fs::read_to_string(&got).ok()?;
        let l: Vec<String> = s.lines().map(str::to_string).collect();
        (l.len() >= 2).then_some(l)
    })
    .unwrap_or_else(|| panic!("no alerts over https; log:\n{}", d.log()));
    let parse = |l: &str| -> (String, serde_json::Value) {
        let (port, body) = l.split_once(' ').unwrap();
        (port.to_string(), serde_json::from_str(body).unwrap())
    };
    let (p0, open) = parse(&lines[0]);
    let (p1, close) = parse(&lines[1]);
    assert_eq!(open["event"], "open");
    assert_eq!(close["event"], "close");
    assert_eq!(open["alert"]["subject"], "10.1.0.66");
    assert_eq!(p0, p1, "the connection is kept and reused");
    d.stop();

    // The system's CAs do not know this one: refused, and said why.
    let d = Daemon::start(&t.rtr, &config("https://127.0.0.1:8443/hook", None));
    burst(&t);
    let said = wait_until(Duration::from_secs(20), || {
        let log = d.log();
        log.contains("not delivered").then_some(log)
    })
    .unwrap_or_else(|| panic!("no delivery failure said; log:\n{}", d.log()));
    assert!(
        said.contains("certificate") || said.contains("UnknownIssuer"),
        "{said}"
    );
    d.stop();

    // A redirect is refused, not followed.
    let d = Daemon::start(
        &t.rtr,
        &config("https://127.0.0.1:8443/moved", Some(&ca_pem)),
    );
    burst(&t);
    let said = wait_until(Duration::from_secs(20), || {
        let log = d.log();
        log.contains("not delivered").then_some(log)
    })
    .unwrap_or_else(|| panic!("no delivery failure said; log:\n{}", d.log()));
    assert!(
        said.contains("redirect to https://127.0.0.1:1/elsewhere refused"),
        "{said}"
    );
    d.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
