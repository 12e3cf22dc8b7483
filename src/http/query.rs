//! Query strings: percent-decoded, every key known to the endpoint, every
//! value checked, so a typo is a 400 that says what was wrong instead of a
//! silently ignored parameter.

use super::respond::ApiError;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `raw`, refusing keys not in `allowed` and repeated keys.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode(k)?;
            let v = decode(v)?;
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(if allowed.is_empty() {
                    format!("unknown parameter {k:?}: this endpoint takes none")
                } else {
                    format!(
                        "unknown parameter {k:?}; this endpoint takes: {}",
                        allowed.join(", ")
                    )
                }));
            }
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(ApiError::bad_request(format!(
                    "parameter {k:?} given twice"
                )));
            }
            pairs.push((k, v));
        }
        Ok(Query { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A whole number within `min..=max`, or `default` when absent.
    pub fn number(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "{key}={v:?}: expected a whole number from {min} to {max}"
            ))),
        }
    }

    /// `true`/`false`/`1`/`0`, or `default` when absent; `?detail` alone is
    /// true.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some("" | "1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{key}={v:?}: expected true or false"
            ))),
        }
    }

    /// One of `choices` (the first is the default).
    pub fn choice<'c>(&self, key: &str, choices: &[&'c str]) -> Result<&'c str, ApiError> {
        let Some(v) = self.get(key) else {
            return Ok(choices[0]);
        };
        choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
            ApiError::bad_request(format!(
                "{key}={v:?}: expected one of {}",
                choices.join(", ")
            ))
        })
    }
}

/// Percent-decoding; `+` is a space as in forms.
fn decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::bad_request(format!("bad percent escape in {s:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request(format!("{s:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let q = Query::parse(
            Some("limit=5&sort=packets&net=2001%3Adb8%3A%3A%2F32&detail"),
            &["limit", "sort", "net", "detail"],
        )
        .unwrap();
        assert_eq!(q.number("limit", 10, 1, 100).unwrap(), 5);
        assert_eq!(q.choice("sort", &["bytes", "packets"]).unwrap(), "packets");
        assert_eq!(q.get("net"), Some("2001:db8::/32"));
        assert!(q.flag("detail", false).unwrap());
        assert!(!q.flag("other", false).unwrap());
    }

    #[test]
    fn refuses_with_a_message() {
        let e = Query::parse(Some("limt=5"), &["limit"]).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("unknown parameter \"limt\""),
            "{}",
            e.message
        );
        assert!(e.message.contains("limit"), "{}", e.message);
        let e = Query::parse(Some("a=1&a=2"), &["a"]).unwrap_err();
        assert!(e.message.contains("twice"));
        let e = Query::parse(Some("a=%zz"), &["a"]).unwrap_err();
        assert!(e.message.contains("percent"));
        let e = Query::parse(Some("a=%ff"), &["a"]).unwrap_err();
        assert!(e.message.contains("UTF-8"));
        let q = Query::parse(Some("limit=0&sort=size&d=maybe"), &["limit", "sort", "d"]).unwrap();
        assert!(
            q.number("limit", 1, 1, 10)
                .unwrap_err()
                .message
                .contains("from 1 to 10")
        );
        assert!(
            q.choice("sort", &["bytes"])
                .unwrap_err()
                .message
                .contains("one of bytes")
        );
        assert!(q.flag("d", false).is_err());
        assert!(
            Query::parse(Some("x"), &[])
                .unwrap_err()
                .message
                .contains("takes none")
        );
    }
}
