//! Links that would take a client off the proxy: the fields each product documents as links to
//! its own API, rewritten from the upstream base to the proxy's URL for the connector, so a
//! client that follows them stays on the proxy (and never sends its local key upstream).
//!
//! - JSON: the values of the keys `self`, `next`, `previous`, `nextPage` (at any depth), of
//!   `href` under a `links` object (Bitbucket), and every string under `_links` (Confluence) —
//!   only when the value starts with the connector's full upstream base on a path-segment
//!   boundary. Every other byte passes through unchanged: an issue description or a page body
//!   that holds the upstream URL comes back as it was sent.
//! - Headers: `Location`, and `Link` (absolute, or site-relative as Confluence v2 sends it).
//!
//! The JSON rewriter streams: it holds one link value at a time (at most [`MAX_LINK`] bytes; a
//! longer one passes unchanged), never the document.

/// The longest link value the rewriter holds; longer values pass through unchanged.
pub const MAX_LINK: usize = 16 * 1024;

/// The keys whose string values are links wherever they appear.
const LINK_KEYS: [&[u8]; 4] = [b"self", b"next", b"previous", b"nextPage"];

/// Where links point now, and where they should.
#[derive(Clone, Debug)]
pub struct LinkTarget {
    /// The connector's upstream base (`https://api.atlassian.com/ex/jira/{cloudId}`).
    pub from: String,
    /// The proxy's URL for the connector (`http://127.0.0.1:7391/jira`).
    pub to: String,
    /// The connector's path prefix on the proxy (`/jira`), for site-relative links.
    pub prefix: String,
}

impl LinkTarget {
    /// `value` on the proxy, when it starts with the upstream base on a segment boundary.
    fn rebase(&self, value: &str) -> Option<String> {
        let from = self.from.trim_end_matches('/');
        let rest = value.strip_prefix(from)?;
        let boundary = rest.is_empty() || rest.starts_with(['/', '?', '#']);
        boundary.then(|| format!("{}{rest}", self.to.trim_end_matches('/')))
    }

    /// A `Location` header's value on the proxy (absolute upstream URLs only).
    pub fn location(&self, value: &str) -> Option<String> {
        self.rebase(value.trim())
    }

    /// A `Link` header's value with each target on the proxy: absolute upstream URLs rebased,
    /// site-relative ones (`</wiki/api/v2/pages?cursor=…>`) given the connector's prefix.
    pub fn link_header(&self, value: &str) -> Option<String> {
        let mut out = String::with_capacity(value.len() + 32);
        let mut changed = false;
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                break;
            };
            let target = &rest[open + 1..open + close];
            out.push_str(&rest[..=open]);
            let rebased = if target.starts_with('/') && !target.starts_with("//") {
                Some(format!("{}{target}", self.prefix.trim_end_matches('/')))
            } else {
                self.rebase(target)
            };
            match rebased {
                Some(new) => {
                    changed = true;
                    out.push_str(&new);
                }
                None => out.push_str(target),
            }
            out.push('>');
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

#[derive(Clone, Copy)]
struct Frame {
    container: Container,
    /// Inside (at any depth) the value of a `links` key.
    links: bool,
    /// Inside (at any depth) the value of a `_links` key.
    underscore_links: bool,
    /// An object that waits for a key (not a value) next.
    expect_key: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An object's key: passed on, and remembered for its value.
    Key,
    /// A link value: held until its end, then rewritten or passed on.
    Link,
    /// Any other string: passed on.
    Plain,
}

/// A streaming JSON link rewriter. Feed it the body as it arrives; it returns what to send.
pub struct JsonLinks {
    target: LinkTarget,
    stack: Vec<Frame>,
    /// In a string, its role, and whether the previous byte was a backslash.
    string: Option<(Role, bool)>,
    /// The key whose value comes next (raw bytes, short).
    key: Option<Vec<u8>>,
    /// The key being read, or the link value being held.
    held: Vec<u8>,
    /// Not JSON after all (or not as expected): pass everything on from here.
    passing: bool,
}

impl JsonLinks {
    /// A rewriter towards `target`.
    pub fn new(target: LinkTarget) -> Self {
        Self {
            target,
            stack: Vec::new(),
            string: None,
            key: None,
            held: Vec::new(),
            passing: false,
        }
    }

    /// The next piece of the body; what to send for it goes to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            if self.passing {
                out.push(byte);
                continue;
            }
            match self.string {
                Some((role, escaped)) => self.in_string(role, escaped, byte, out),
                None => self.between(byte, out),
            }
        }
    }

    /// The end of the body: whatever is still held goes out as it came.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
    }

    fn in_string(&mut self, role: Role, escaped: bool, byte: u8, out: &mut Vec<u8>) {
        let ends = byte == b'"' && !escaped;
        let escaped = !escaped && byte == b'\\';
        match role {
            Role::Plain => out.push(byte),
            Role::Key => {
                out.push(byte);
                if !ends && self.held.len() < 256 {
                    self.held.push(byte);
                }
            }
            Role::Link if ends => {
                let raw = std::mem::take(&mut self.held);
                self.emit_link(&raw, out);
                out.push(byte);
            }
            Role::Link => {
                self.held.push(byte);
                if self.held.len() > MAX_LINK {
                    // Too long for a link: it goes on as it is.
                    out.append(&mut self.held);
                    self.string = Some((Role::Plain, escaped));
                    return;
                }
            }
        }
        if ends {
            self.string = None;
            if role == Role::Key {
                self.key = Some(std::mem::take(&mut self.held));
            }
        } else {
            self.string = Some((role, escaped));
        }
    }

    fn emit_link(&self, raw: &[u8], out: &mut Vec<u8>) {
        // Some encoders escape `/` as `\/`: compare the plain form.
        let text = String::from_utf8_lossy(raw);
        let plain = text.replace("\\/", "/");
        match self.target.rebase(&plain) {
            Some(new) => out.extend_from_slice(new.as_bytes()),
            None => out.extend_from_slice(raw),
        }
    }

    fn between(&mut self, byte: u8, out: &mut Vec<u8>) {
        out.push(byte);
        match byte {
            b'"' => {
                let role = match self.stack.last() {
                    Some(frame) if frame.container == Container::Object && frame.expect_key => {
                        Role::Key
                    }
                    frame => {
                        let key = self.key.as_deref();
                        let named_link = key.is_some_and(|k| LINK_KEYS.contains(&k));
                        let href = key == Some(b"href") && frame.is_some_and(|f| f.links);
                        let under = frame.is_some_and(|f| f.underscore_links);
                        if named_link || href || under {
                            Role::Link
                        } else {
                            Role::Plain
                        }
                    }
                };
                self.string = Some((role, false));
            }
            b'{' | b'[' => {
                let parent = self.stack.last().copied();
                let key = self.key.take();
                let key = key.as_deref();
                self.stack.push(Frame {
                    container: if byte == b'{' {
                        Container::Object
                    } else {
                        Container::Array
                    },
                    links: parent.is_some_and(|p| p.links) || key == Some(b"links"),
                    underscore_links: parent.is_some_and(|p| p.underscore_links)
                        || key == Some(b"_links"),
                    expect_key: byte == b'{',
                });
            }
            b'}' | b']' => {
                if self.stack.pop().is_none() {
                    self.passing = true;
                }
                self.key = None;
            }
            b',' => {
                self.key = None;
                if let Some(frame) = self.stack.last_mut() {
                    frame.expect_key = frame.container == Container::Object;
                }
            }
            b':' => {
                if let Some(frame) = self.stack.last_mut() {
                    frame.expect_key = false;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> LinkTarget {
        LinkTarget {
            from: "https://api.atlassian.com/ex/jira/1111".into(),
            to: "http://127.0.0.1:7391/jira".into(),
            prefix: "/jira".into(),
        }
    }

    /// Feeds `json` in pieces of every size: the answer must not depend on where bytes split.
    fn rewrite(json: &str) -> String {
        let mut first = None;
        for step in 1..=json.len().min(17) {
            let mut rewriter = JsonLinks::new(target());
            let mut out = Vec::new();
            for piece in json.as_bytes().chunks(step) {
                rewriter.feed(piece, &mut out);
            }
            rewriter.finish(&mut out);
            let text = String::from_utf8(out).unwrap();
            match &first {
                None => first = Some(text),
                Some(seen) => assert_eq!(seen, &text, "split every {step} bytes"),
            }
        }
        first.unwrap()
    }

    #[test]
    fn link_fields_move_to_the_proxy_and_content_stays() {
        let json = r#"{"self":"https://api.atlassian.com/ex/jira/1111/rest/api/3/issue/1","key":"OPS-1",
            "fields":{"description":"see https://api.atlassian.com/ex/jira/1111/rest/api/3/issue/1",
            "self":"https://api.atlassian.com/ex/jira/11112/rest/x","nextPage":"https://api.atlassian.com/ex/jira/1111?startAt=50"},
            "links":{"self":{"href":"https://api.atlassian.com/ex/jira/1111/a"},"html":{"href":"https://bitbucket.org/x"}},
            "_links":{"base":"https://api.atlassian.com/ex/jira/1111","next":"/rest/api/space?start=2"},
            "values":[{"next":"https:\/\/api.atlassian.com\/ex\/jira\/1111\/b"}], "n": 1, "t": true}"#;
        let out = rewrite(json);
        assert!(
            out.contains(r#""self":"http://127.0.0.1:7391/jira/rest/api/3/issue/1""#),
            "{out}"
        );
        // Content is never touched, nor a host that only shares a prefix.
        assert!(out.contains(
            r#""description":"see https://api.atlassian.com/ex/jira/1111/rest/api/3/issue/1""#
        ));
        assert!(out.contains(r#""self":"https://api.atlassian.com/ex/jira/11112/rest/x""#));
        assert!(out.contains(r#""nextPage":"http://127.0.0.1:7391/jira?startAt=50""#));
        assert!(out.contains(r#"{"href":"http://127.0.0.1:7391/jira/a"}"#));
        assert!(out.contains(r#""html":{"href":"https://bitbucket.org/x"}"#));
        assert!(out.contains(r#""base":"http://127.0.0.1:7391/jira""#));
        assert!(out.contains(r#""next":"/rest/api/space?start=2""#));
        assert!(
            out.contains(r#""next":"http://127.0.0.1:7391/jira/b""#),
            "{out}"
        );
        assert!(out.ends_with(r#""n": 1, "t": true}"#));
    }

    #[test]
    fn not_json_or_broken_json_passes_unchanged() {
        for text in [
            "plain text https://api.atlassian.com/ex/jira/1111/x",
            r#"]{"self":"https://api.atlassian.com/ex/jira/1111/x"}"#,
            r#"{"self":"https://api.atlassian.com/ex/jira/1111/unterminated"#,
        ] {
            let out = rewrite(text);
            if text.starts_with('{') {
                assert_eq!(out, text);
            } else {
                assert_eq!(out, text, "{text}");
            }
        }
    }

    #[test]
    fn headers_move_too() {
        let t = target();
        assert_eq!(
            t.location("https://api.atlassian.com/ex/jira/1111/rest/api/3/issue/2"),
            Some("http://127.0.0.1:7391/jira/rest/api/3/issue/2".into())
        );
        assert_eq!(t.location("https://example.invalid/elsewhere"), None);
        assert_eq!(
            t.link_header(r#"</wiki/api/v2/pages?cursor=abc>; rel="next", <https://api.atlassian.com/ex/jira/1111/p>; rel="base""#),
            Some(r#"</jira/wiki/api/v2/pages?cursor=abc>; rel="next", <http://127.0.0.1:7391/jira/p>; rel="base""#.into())
        );
        assert_eq!(
            t.link_header(r#"<https://other.example/x>; rel="next""#),
            None
        );
    }
}
