//! Line numbers for errors in TOML files (latch.toml, manifests): people fix files by line.

use std::ops::Range;

/// The 1-based line of a byte offset.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The 1-based line where a dotted key path (`["connectors", "jira", "api_base"]`) is defined,
/// or where its nearest defined ancestor is.
pub(crate) fn line_of_key(text: &str, path: &[&str]) -> Option<usize> {
    let doc = toml_edit::Document::parse(text.to_owned()).ok()?;
    let mut best: Option<Range<usize>> = None;
    let mut item = doc.as_item();
    for key in path {
        let Some(table) = item.as_table_like() else {
            break;
        };
        let Some((k, v)) = table.get_key_value(key) else {
            break;
        };
        if let Some(span) = k.span().or_else(|| v.span()) {
            best = Some(span);
        }
        item = v;
    }
    best.map(|span| line_of_offset(text, span.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let text = "[proxy]\nlisten = \"x\"\n\n[connectors.jira]\nprovider = \"a\"\nsite = \"s\"\n";
        assert_eq!(line_of_key(text, &["proxy", "listen"]), Some(2));
        assert_eq!(line_of_key(text, &["connectors", "jira", "site"]), Some(6));
        assert_eq!(line_of_key(text, &["connectors", "jira", "nope"]), Some(4));
        assert_eq!(line_of_offset(text, 0), 1);
    }
}
