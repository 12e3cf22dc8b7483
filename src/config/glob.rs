//! Interface name patterns: `*` matches any run of characters, `?` one
//! character; anything else matches itself.

use std::fmt;

use serde::{Serialize, Serializer};

/// A name or a simple glob like `veth*`.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Accepts any non-empty pattern up to the kernel's name length limit
    /// plus wildcards.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("interface patterns must not be empty".into());
        }
        if pattern.len() > 64 || pattern.contains(['/', ' ', '\t', '\n']) {
            return Err(format!(
                "{pattern:?} is not an interface name or pattern (names are at most 15 characters, without '/' or spaces; use '*' and '?' as wildcards)"
            ));
        }
        Ok(Glob(pattern.to_string()))
    }

    /// True if `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        matches(self.0.as_bytes(), name.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn matches(p: &[u8], n: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point: linear for the
    // patterns operators write.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Glob::new(p).unwrap().matches(n)
    }

    #[test]
    fn literal_names() {
        assert!(m("eth0", "eth0"));
        assert!(!m("eth0", "eth01"));
        assert!(!m("eth0", "eth"));
    }

    #[test]
    fn wildcards() {
        assert!(m("veth*", "veth"));
        assert!(m("veth*", "veth1234"));
        assert!(!m("veth*", "eth0"));
        assert!(m("*", "anything"));
        assert!(m("e?h*", "eth0"));
        assert!(m("*-r", "ta-1-r"));
        assert!(!m("*-r", "ta-1-g"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(Glob::new("").is_err());
        assert!(Glob::new("a/b").is_err());
        assert!(Glob::new("eth 0").is_err());
    }
}
