//! The browser's session cookie in token mode: a signed expiry, never the token.
//!
//! A browser opens `/?token=TOKEN` once; the server answers with a cookie
//! `tasker_session=v1.EXPIRY.MAC`, where MAC is HMAC-SHA256 over `v1.EXPIRY` under
//! a key derived from the token (HMAC of a fixed label under the token). So:
//! the cookie reveals nothing of the token (whatever characters it holds: `;`,
//! spaces), sessions survive a restart of the server, and changing the token ends
//! every session at once. Expired or forged values are refused.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name.
pub(crate) const COOKIE: &str = "tasker_session";
/// How long a session lasts (the cookie's Max-Age too).
pub(crate) const LIFETIME_S: i64 = 30 * 24 * 3600;

#[derive(Clone)]
pub(crate) struct Sessions {
    key: [u8; 32],
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { .. }")
    }
}

fn mac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: this cannot fail.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    pub(crate) fn new(token: &str) -> Sessions {
        Sessions {
            key: mac(token.as_bytes(), b"tasker dashboard session key v1"),
        }
    }

    /// A new session value, valid until `now + LIFETIME_S` (Unix seconds).
    pub(crate) fn issue(&self, now: i64) -> String {
        let body = format!("v1.{}", now + LIFETIME_S);
        let sig = hex(&mac(&self.key, body.as_bytes()));
        format!("{body}.{sig}")
    }

    /// Whether `value` is a session this server issued and it has not expired.
    pub(crate) fn valid(&self, value: &str, now: i64) -> bool {
        let Some((body, sig)) = value.rsplit_once('.') else {
            return false;
        };
        let Some(expiry) = body.strip_prefix("v1.").and_then(|e| e.parse::<i64>().ok()) else {
            return false;
        };
        let want = hex(&mac(&self.key, body.as_bytes()));
        super::same(sig.as_bytes(), want.as_bytes()) && expiry > now
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_session_is_signed_expires_and_names_no_token() {
        let s = Sessions::new("a token; with spaces and = signs");
        let v = s.issue(1000);
        assert!(!v.contains("token") && !v.contains(' ') && !v.contains(';'));
        assert!(s.valid(&v, 1000));
        assert!(!s.valid(&v, 1000 + LIFETIME_S), "expired");
        // Another token's server, a changed expiry, a truncated signature: refused.
        assert!(!Sessions::new("another token entirely").valid(&v, 1000));
        let forged = v.replacen(&(1000 + LIFETIME_S).to_string(), "99999999999", 1);
        assert!(!s.valid(&forged, 1000));
        assert!(!s.valid(&v[..v.len() - 1], 1000));
        assert!(!s.valid("", 1000) && !s.valid("v1.x.y", 1000));
    }
}
