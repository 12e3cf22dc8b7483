//! Access control: an optional bearer token or basic-auth user, checked on
//! every request but `/healthz` (for load balancers) and, with a bearer
//! token, the dashboard's static files (they hold no data, and a browser
//! cannot add a header to a page it navigates to; the page then sends the
//! token with every API call it makes).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use hyper::Response;
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use super::respond::{ApiError, Body, set};
use crate::config::Auth;

/// What a request must present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Open,
    Bearer(Vec<u8>),
    /// `user:password`, as basic auth carries it once decoded.
    Basic(Vec<u8>),
}

impl Access {
    pub fn new(auth: Option<&Auth>) -> Access {
        match auth {
            None => Access::Open,
            Some(Auth::Bearer(t)) => Access::Bearer(t.as_bytes().to_vec()),
            Some(Auth::Basic { user, password }) => {
                Access::Basic(format!("{user}:{password}").into_bytes())
            }
        }
    }

    /// Ok, or the 401 to send.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let given = headers
            .get(AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let granted = match self {
            Access::Open => true,
            Access::Bearer(token) => scheme(given, "bearer")
                .map(trim)
                .is_some_and(|t| same(t, token)),
            Access::Basic(pair) => scheme(given, "basic")
                .and_then(|b| STANDARD.decode(trim(b)).ok())
                .is_some_and(|p| same(&p, pair)),
        };
        if granted {
            Ok(())
        } else {
            Err(Refused {
                basic: matches!(self, Access::Basic(_)),
                without_credentials: given.is_empty(),
            })
        }
    }
}

/// A request without the right credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    basic: bool,
    without_credentials: bool,
}

impl Refused {
    /// The 401 with the challenge a client needs to try again.
    pub fn response(self) -> Response<Body> {
        let message = if self.without_credentials {
            "this API needs credentials (see [http.auth] in the config)"
        } else {
            "wrong credentials"
        };
        let mut r = ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
        .response();
        let challenge = if self.basic {
            "Basic realm=\"trafficalerted\", charset=\"UTF-8\""
        } else {
            "Bearer realm=\"trafficalerted\""
        };
        set(&mut r, WWW_AUTHENTICATE, challenge);
        r
    }
}

/// The credentials after `scheme ` (scheme names are case-insensitive).
fn scheme<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let n = name.len();
    (header.len() > n && header[..n].eq_ignore_ascii_case(name.as_bytes()) && header[n] == b' ')
        .then(|| &header[n + 1..])
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Compares in time independent of where the first difference is, so the
/// secret cannot be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn bearer_token_is_checked() {
        let a = Access::new(Some(&Auth::Bearer("s3cret".into())));
        assert!(a.check(&headers("Bearer s3cret")).is_ok());
        assert!(a.check(&headers("bearer  s3cret ")).is_ok());
        assert!(a.check(&headers("Bearer s3cre")).is_err());
        assert!(a.check(&headers("Bearer s3cret2")).is_err());
        assert!(a.check(&headers("Basic s3cret")).is_err());
        let r = a.check(&HeaderMap::new()).unwrap_err().response();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }

    #[test]
    fn basic_auth_is_checked() {
        let a = Access::new(Some(&Auth::Basic {
            user: "ops".into(),
            password: "pw:x".into(),
        }));
        let good = format!("Basic {}", STANDARD.encode("ops:pw:x"));
        assert!(a.check(&headers(&good)).is_ok());
        let bad = format!("Basic {}", STANDARD.encode("ops:pw"));
        assert!(a.check(&headers(&bad)).is_err());
        assert!(a.check(&headers("Basic !!!notbase64")).is_err());
        let r = a.check(&headers("Bearer x")).unwrap_err().response();
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }

    #[test]
    fn open_lets_everyone_in() {
        assert!(Access::Open.check(&HeaderMap::new()).is_ok());
    }
}
