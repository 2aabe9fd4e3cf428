//! The one canonical form of a request path. Routing, the key's path policy and the upstream
//! URL are all derived from it, so no two of them can disagree about where a request goes.
//!
//! Canonicalising percent-decodes unreserved characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`),
//! normalises the hex of every other escape to upper case, collapses repeated `/`, and refuses
//! anything an upstream could read as another path than the one policy saw:
//! `.`/`..` segments (also encoded, also with Tomcat's `;param` suffix), an encoded `/` or `\`,
//! a raw `\`, NUL and other control characters, broken escapes, and double-encoded dots,
//! slashes and backslashes (for servers that decode twice).

use std::fmt;

/// Why a path was refused. The message names the construct, never echoes the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// A `.` or `..` segment, plain or percent-encoded.
    DotSegment,
    /// `%2F` or `%5C`: a separator hidden from routing and policy.
    EncodedSeparator,
    /// A raw `\`, which some servers treat as `/`.
    Backslash,
    /// NUL or another control character, raw or encoded.
    Control,
    /// `%` not followed by two hex digits.
    BrokenEscape,
    /// `%25` followed by the code of a dot, slash or backslash.
    DoubleEncoded,
    /// Not an origin-form path.
    NotAbsolute,
}

impl fmt::Display for BadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DotSegment => "the path has a `.` or `..` segment (plain or percent-encoded)",
            Self::EncodedSeparator => "the path has an encoded `/` or `\\` (%2F, %5C)",
            Self::Backslash => "the path has a backslash",
            Self::Control => "the path has NUL or another control character",
            Self::BrokenEscape => "the path has a `%` that is not followed by two hex digits",
            Self::DoubleEncoded => {
                "the path has a double-encoded dot, slash or backslash (%252E, %252F, %255C)"
            }
            Self::NotAbsolute => "the path does not start with `/`",
        })
    }
}

/// A path in canonical form: starts with `/`, no empty, `.` or `..` segment, only
/// characters that are valid in a URI path (everything else percent-encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CanonicalPath(String);

impl CanonicalPath {
    /// The whole path, with its leading `/`.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The first segment (the connector, for `/{connector}/{rest}`) and everything after it,
    /// without a leading `/`.
    pub(crate) fn split_first(&self) -> (&str, &str) {
        let trimmed = &self.0[1..];
        trimmed.split_once('/').unwrap_or((trimmed, ""))
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters a URI path may carry as they are (RFC 3986 `pchar` minus `%`, plus `/`).
fn path_char(b: u8) -> bool {
    unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(UPPER_HEX[usize::from(b >> 4)]));
    out.push(char::from(UPPER_HEX[usize::from(b & 15)]));
}

/// Canonicalises the path of a request (`request.uri().path()`).
pub(crate) fn canonical(raw: &str) -> Result<CanonicalPath, BadPath> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(BadPath::NotAbsolute);
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(BadPath::BrokenEscape);
            };
            let decoded = hi << 4 | lo;
            match decoded {
                b'/' | b'\\' => return Err(BadPath::EncodedSeparator),
                0..=0x1f | 0x7f => return Err(BadPath::Control),
                b'%' => {
                    let next = (
                        bytes.get(i + 3).copied().and_then(hex),
                        bytes.get(i + 4).copied().and_then(hex),
                    );
                    if let (Some(h), Some(l)) = next {
                        if matches!(h << 4 | l, b'.' | b'/' | b'\\') {
                            return Err(BadPath::DoubleEncoded);
                        }
                    }
                    push_escaped(&mut out, decoded);
                }
                d if unreserved(d) => out.push(char::from(d)),
                d => push_escaped(&mut out, d),
            }
            i += 3;
            continue;
        }
        match b {
            b'\\' => return Err(BadPath::Backslash),
            0..=0x1f | 0x7f => return Err(BadPath::Control),
            // A repeated `/` adds nothing a caller means; collapsing it keeps policy and the
            // upstream URL on the same segments.
            b'/' if out.ends_with('/') => {}
            b if path_char(b) => out.push(char::from(b)),
            b => push_escaped(&mut out, b),
        }
        i += 1;
    }
    for segment in out.split('/') {
        // Tomcat (Jira, Confluence) strips `;params` before resolving dot segments: `..;x` is `..`.
        let name = segment.split(';').next().unwrap_or(segment);
        if name == "." || name == ".." {
            return Err(BadPath::DotSegment);
        }
    }
    // `/x/` keeps its trailing slash (some APIs care); only the root stays a bare `/`.
    Ok(CanonicalPath(out))
}

/// The upstream URL for `rest` (a canonical path's remainder) below a connector's `base`.
pub(crate) fn upstream_url(base: &str, rest: &str, query: Option<&str>) -> String {
    let base = base.trim_end_matches('/');
    // `/CONNECTOR` alone is the base itself (an MCP server's one endpoint, exactly).
    let joined = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}/{rest}")
    };
    match query {
        Some(q) => format!("{joined}?{q}"),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(raw: &str) -> String {
        canonical(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .as_str()
            .to_owned()
    }

    #[test]
    fn escapes_that_reach_other_paths_are_refused() {
        for (raw, why) in [
            (
                "/jira/rest/../../../confluence/c/wiki/rest/api/space",
                BadPath::DotSegment,
            ),
            ("/opsgenie/v2/alerts/../users", BadPath::DotSegment),
            ("/opsgenie/v2/alerts/%2e%2e/users", BadPath::DotSegment),
            ("/opsgenie/v2/alerts/.%2E/users", BadPath::DotSegment),
            ("/opsgenie/v2/alerts/./x", BadPath::DotSegment),
            ("/opsgenie/v2/alerts/..", BadPath::DotSegment),
            ("/jira/rest/..;/..;/x", BadPath::DotSegment),
            (
                "/opsgenie/v2/alerts%2f..%2fusers",
                BadPath::EncodedSeparator,
            ),
            ("/opsgenie/v2/alerts%5C..", BadPath::EncodedSeparator),
            ("/opsgenie/v2\\..\\users", BadPath::Backslash),
            ("/jira/a%00b", BadPath::Control),
            ("/jira/a%0Ab", BadPath::Control),
            ("/jira/a%7fb", BadPath::Control),
            ("/jira/a%zzb", BadPath::BrokenEscape),
            ("/jira/a%2", BadPath::BrokenEscape),
            ("/jira/a%252e%252e/x", BadPath::DoubleEncoded),
            ("/jira/a%252Fb", BadPath::DoubleEncoded),
            ("jira/x", BadPath::NotAbsolute),
        ] {
            assert_eq!(canonical(raw), Err(why), "{raw}");
        }
    }

    #[test]
    fn ordinary_paths_pass_and_are_normalised() {
        assert_eq!(ok("/jira/rest/api/3/myself"), "/jira/rest/api/3/myself");
        assert_eq!(
            ok("/opsgenie/v2/alerts/%7Euser"),
            "/opsgenie/v2/alerts/~user"
        );
        assert_eq!(ok("/jira/a%41%2d%5f"), "/jira/aA-_");
        assert_eq!(ok("/jira/space%20name"), "/jira/space%20name");
        assert_eq!(ok("/jira/a%3fb%2a"), "/jira/a%3Fb%2A");
        assert_eq!(ok("/jira//rest///api"), "/jira/rest/api");
        assert_eq!(ok("/jira/rest/api/"), "/jira/rest/api/");
        assert_eq!(
            ok("/jira/v1.0/..x/x..y/.hidden"),
            "/jira/v1.0/..x/x..y/.hidden"
        );
        assert_eq!(ok("/jira/a;b=c"), "/jira/a;b=c");
        assert_eq!(ok("/jira/%25zz"), "/jira/%25zz");
        assert_eq!(ok("/"), "/");
        let path = canonical("/jira/rest/api/3/myself").unwrap();
        assert_eq!(path.split_first(), ("jira", "rest/api/3/myself"));
        assert_eq!(canonical("/jira").unwrap().split_first(), ("jira", ""));
    }

    #[test]
    fn canonical_is_a_fixed_point() {
        for raw in ["/jira/a%7e%41", "/x//y/%2a", "/a/b%20c/"] {
            let once = ok(raw);
            assert_eq!(ok(&once), once);
        }
    }

    /// Path-like input: segments of letters, dots, escapes and separators.
    fn pathish() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            Just("a".to_owned()),
            Just("rest".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("/".to_owned()),
            Just("\\".to_owned()),
            Just(";".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E".to_owned()),
            Just("%2f".to_owned()),
            Just("%5c".to_owned()),
            Just("%25".to_owned()),
            Just("%00".to_owned()),
            Just("%".to_owned()),
            Just("~".to_owned()),
            Just("?".to_owned()),
            Just("#".to_owned()),
            Just("@".to_owned()),
            Just(":".to_owned()),
            "[ -~]{1,3}",
            "%[0-9a-fA-F]{2}",
        ];
        prop::collection::vec(atom, 0..24).prop_map(|parts| format!("/{}", parts.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// No accepted path yields a URL outside the connector's base, as a WHATWG URL parser
        /// (which resolves dot segments, encoded ones included) reads it.
        #[test]
        fn no_accepted_path_leaves_the_base(raw in pathish()) {
            let Ok(path) = canonical(&raw) else { return Ok(()) };
            let (_, rest) = path.split_first();
            for base in ["https://api.atlassian.com/ex/jira/1111", "https://api.opsgenie.com", "http://127.0.0.1:9/site/acme"] {
                let target = upstream_url(base, rest, None);
                let parsed = url::Url::parse(&target).map_err(|e| TestCaseError::fail(format!("{target}: {e}")))?;
                let base_url = url::Url::parse(base).unwrap();
                prop_assert_eq!(parsed.host_str(), base_url.host_str(), "{}", target);
                prop_assert_eq!(parsed.port(), base_url.port(), "{}", target);
                let prefix = format!("{}/", base_url.path().trim_end_matches('/'));
                prop_assert!(parsed.path().starts_with(&prefix) || parsed.path() == base_url.path(), "{} -> {}", target, parsed.path());
                // What the upstream sees is what policy saw: no dot segment survives.
                // (An empty rest is the base itself.)
                let expected = if rest.is_empty() { base_url.path().to_owned() } else { format!("{prefix}{rest}") };
                prop_assert_eq!(parsed.path(), expected);
                prop_assert!(target.parse::<http::Uri>().is_ok(), "{}", target);
            }
        }

        /// Whatever is accepted is stable: canonicalising again changes nothing.
        #[test]
        fn accepted_paths_are_fixed_points(raw in pathish()) {
            if let Ok(path) = canonical(&raw) {
                prop_assert_eq!(canonical(path.as_str()), Ok(path.clone()));
            }
        }
    }
}
