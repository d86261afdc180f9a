//! A cheap look at a YAML text before it is parsed, to refuse pathological nesting quickly.
//!
//! libyaml (under serde_yaml_ng) keeps a possible "simple key" per open flow collection (`[`
//! or `{`) and walks them all for every token, so its cost grows with tokens times flow depth:
//! 60,000 nested `[` (120 KB) cost seconds of CPU, and the deserializer's own depth limit
//! (128) only applies after the whole document was scanned. Gantry's documents are
//! Kubernetes objects, a dozen levels deep. So, per document (documents end at `---` or
//! `...` lines, where libyaml's scanning of a document ends too):
//!
//! - up to [`FREE_OPENERS`] `[`/`{` characters in all: nothing to fear, the cost is bounded;
//! - more: the document is refused if openers times bytes exceeds [`COST_BUDGET`], which
//!   bounds libyaml's work whatever the brackets mean, or if its flow nesting, as a small
//!   lexer reads it (quotes, comments, flow rules), is deeper than [`MAX_FLOW_DEPTH`].

/// Documents with at most this many `[` and `{` are never looked at further.
pub const FREE_OPENERS: usize = 256;
/// Openers times bytes of one document: about half a second of libyaml's worst case.
pub const COST_BUDGET: usize = 512 << 20;
/// Deepest flow nesting accepted.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Refuses a text with a document whose flow nesting could make parsing expensive; the
/// message names the document.
pub fn check(text: &str) -> Result<(), String> {
    for (index, document) in documents(text.as_bytes()).enumerate() {
        let openers = document.iter().filter(|&&b| b == b'[' || b == b'{').count();
        if openers <= FREE_OPENERS {
            continue;
        }
        let number = index + 1;
        if openers.saturating_mul(document.len()) > COST_BUDGET {
            return Err(format!(
                "document {number}: {openers} flow collections ('[', '{{') in {} bytes are more than Gantry parses; split the document or write it in block style",
                document.len()
            ));
        }
        let depth = flow_depth(document);
        if depth > MAX_FLOW_DEPTH {
            return Err(format!("document {number}: flow collections nested {depth} deep (at most {MAX_FLOW_DEPTH})"));
        }
    }
    Ok(())
}

/// The documents of a stream: split at lines that are `---` or `...` (alone or followed by
/// a blank), which end a document wherever they are.
fn documents(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut line_start = 0;
        while line_start < text.len() {
            let line_end = text[line_start..].iter().position(|&b| b == b'\n').map_or(text.len(), |p| line_start + p);
            let line = &text[line_start..line_end];
            let marker = (line.starts_with(b"---") || line.starts_with(b"..."))
                && line.get(3).is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r'));
            if marker && line_start > 0 {
                rest = Some(&text[line_start + 3..]);
                return Some(&text[..line_start]);
            }
            line_start = line_end + 1;
        }
        rest = None;
        Some(text)
    })
}

/// What the lexer is in the middle of, inside a flow collection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Where a token may start: after `[`, `{`, `,`, a `:` or `?` indicator, or a comment.
    TokenStart,
    /// Inside a plain scalar (which may contain quotes and run over lines).
    Plain,
    /// After an anchor, alias or tag: a node may follow after a blank.
    Property,
    /// After a complete quoted scalar or collection.
    AfterNode,
}

/// The deepest flow nesting of a document. Every `[` and `{` counts as an opener, even in a
/// string or comment; a `]` or `}` counts as a closer only inside a flow collection and
/// outside quoted scalars, comments and tags, as libyaml's scanner reads them there.
fn flow_depth(document: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let open = |depth: &mut usize, deepest: &mut usize| {
        *depth += 1;
        *deepest = (*deepest).max(*depth);
    };
    let mut state = Flow::TokenStart;
    let mut previous = b'\n';
    let mut i = 0;
    while i < document.len() {
        let b = document[i];
        let blank_before = matches!(previous, b' ' | b'\t' | b'\r' | b'\n');
        let blank_after = document.get(i + 1).is_none_or(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        previous = b;
        i += 1;
        match b {
            b'[' | b'{' => {
                open(&mut depth, &mut deepest);
                state = Flow::TokenStart;
            }
            b'#' if blank_before => {
                // A comment, to the end of the line; brackets in it still count as openers.
                while i < document.len() && document[i] != b'\n' {
                    if matches!(document[i], b'[' | b'{') {
                        open(&mut depth, &mut deepest);
                    }
                    i += 1;
                }
                if state == Flow::Plain {
                    state = Flow::TokenStart;
                }
            }
            _ if depth == 0 => {}
            b'"' | b'\'' if state != Flow::Plain => {
                i = skip_quoted(document, i, b, &mut || open(&mut depth, &mut deepest));
                previous = b;
                state = Flow::AfterNode;
            }
            b'!' if state != Flow::Plain => {
                // A tag: `!<...>` may hold brackets; a shorthand ends at a blank or indicator.
                let end = if document.get(i) == Some(&b'<') { b'>' } else { b' ' };
                while i < document.len() && document[i] != end && !matches!(document[i], b'\n' | b'\t' | b'\r') {
                    if end == b' ' && matches!(document[i], b',' | b'[' | b']' | b'{' | b'}') {
                        break;
                    }
                    if matches!(document[i], b'[' | b'{') {
                        open(&mut depth, &mut deepest);
                    }
                    i += 1;
                }
                state = Flow::Property;
            }
            b'&' | b'*' if state != Flow::Plain => state = Flow::Property,
            b']' | b'}' => {
                depth -= 1;
                state = Flow::AfterNode;
            }
            b',' => state = Flow::TokenStart,
            b':' if state != Flow::Plain || blank_after => state = Flow::TokenStart,
            b'?' if state == Flow::TokenStart && blank_after => {}
            b' ' | b'\t' | b'\r' | b'\n' => {
                if state == Flow::Property {
                    state = Flow::TokenStart;
                }
            }
            _ => {
                if state != Flow::Property {
                    state = Flow::Plain;
                }
            }
        }
    }
    deepest
}

/// Skips a quoted scalar opened just before `start`; returns the index after its closing
/// quote. Openers inside are reported (they count, to stay on the safe side).
fn skip_quoted(document: &[u8], start: usize, quote: u8, open: &mut impl FnMut()) -> usize {
    let mut i = start;
    while i < document.len() {
        let b = document[i];
        if matches!(b, b'[' | b'{') {
            open();
        }
        if quote == b'"' && b == b'\\' {
            i += 2;
            continue;
        }
        if b == quote {
            if quote == b'\'' && document.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        flow_depth(text.as_bytes())
    }

    #[test]
    fn flow_depth_follows_collections_not_strings_or_comments() {
        assert_eq!(depth("a: [1, [2, {b: [3]}]]"), 4);
        assert_eq!(depth("a: [\"]]]]\", ']]]', [x]]"), 2, "closers in quotes do not close");
        assert_eq!(depth("a: [x, # ]]]]\n [y]]"), 2, "closers in comments do not close");
        assert_eq!(depth("a: [!<tag:x]]]> y, [z]]"), 2, "closers in a verbatim tag do not close");
        assert_eq!(depth("a: {\"k\":\"]]]]\", b: [1]}"), 2, "a quote right after a JSON-style key");
        assert_eq!(depth("a: [&anchor \"]]]\", [1]]"), 2);
        assert_eq!(depth("a: [don't ]"), 1, "a quote inside a plain scalar is text");
        assert_eq!(depth("a: [it's, [x]]"), 2);
        assert_eq!(depth("a: [http://x/y, [1]]"), 2);
        assert_eq!(depth("a: ^/api/[a-z]+$\nb: c"), 1, "block text: brackets count as openers, at worst");
    }

    #[test]
    fn documents_end_at_markers() {
        let docs: Vec<&[u8]> = documents(b"a: 1\n---\nb: [2]\n--- # c\nc: 3\n...\n").collect();
        assert_eq!(docs.len(), 4, "{:?}", docs.iter().map(|d| String::from_utf8_lossy(d)).collect::<Vec<_>>());
        assert_eq!(docs[1], b"\nb: [2]\n");
        let inline: Vec<&[u8]> = documents(b"a: '---'\nb: ---x\n").collect();
        assert_eq!(inline.len(), 1);
    }

    #[test]
    fn deep_nesting_is_refused_at_once() {
        let started = std::time::Instant::now();
        for deep in [
            format!("{}{}", "[".repeat(60_000), "]".repeat(60_000)),
            format!("a: {}{}", "[ ".repeat(60_000), "]".repeat(60_000)),
            format!("{}1{}", "{a: ".repeat(30_000), "}".repeat(30_000)),
            // Fake closers in strings cannot hide the depth.
            format!("a: {}", "[\"]]]]]]]]\", ".repeat(5_000)),
            // A shallow document first does not hide a deep one.
            format!("a: 1\n---\n{}{}", "[".repeat(300), "]".repeat(300)),
        ] {
            assert!(check(&deep).is_err(), "{}...", &deep[..40]);
        }
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[test]
    fn ordinary_documents_pass() {
        let flow_heavy: String =
            (0..2_000).map(|i| format!("  - {{addresses: [\"10.0.{}.{}\"]}}\n", i / 250, i % 250)).collect();
        let text = format!(
            "kind: EndpointSlice\nendpoints:\n{flow_heavy}---\nkind: Service\nspec: {{ports: [{{port: 80}}]}}\n"
        );
        assert!(check(&text).is_ok());
        let json: String = format!("{{\"items\": [{}]}}", vec!["{\"a\": [1, {\"b\": \"]\"}]}"; 300].join(", "));
        assert!(check(&json).is_ok(), "{:?}", check(&json));
    }
}
