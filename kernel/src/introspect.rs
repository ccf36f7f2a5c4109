//! Code introspection that needs no compiler: `is_complete` and cursor arithmetic.
//!
//! Jupyter counts cursor positions in Unicode code points; evcxr (like Rust strings) in bytes.
//! The conversions live here so every request converts the same way.

/// The answer to `is_complete_request`.
#[derive(Debug, PartialEq)]
pub enum Completeness {
    Complete,
    /// More input is needed; the indent to offer on the next line.
    Incomplete(String),
    Invalid,
}

pub fn is_complete(code: &str) -> Completeness {
    // evcxr commands (`:dep …`) and shell lines are complete on their own.
    let rust: String = code.lines().map(|l| if l.trim_start().starts_with(':') { "" } else { l }).collect::<Vec<_>>().join("\n");
    match scan(&rust) {
        Scan::Unterminated => return Completeness::Incomplete(String::new()),
        Scan::Mismatched => return Completeness::Invalid,
        Scan::Open(depth) => return Completeness::Incomplete("    ".repeat(depth.min(8))),
        Scan::Balanced => {}
    }
    if rust.trim().is_empty() {
        return Completeness::Complete;
    }
    match syn::parse::Parser::parse_str(syn::Block::parse_within, &rust) {
        Ok(_) => Completeness::Complete,
        Err(error) if error.to_string().contains("end of input") => Completeness::Incomplete(String::new()),
        Err(_) => Completeness::Invalid,
    }
}

enum Scan {
    Balanced,
    Open(usize),
    Mismatched,
    /// Inside a string, character literal or block comment at the end.
    Unterminated,
}

/// Tracks brackets, skipping strings, raw strings, char literals and comments.
fn scan(code: &str) -> Scan {
    let chars: Vec<char> = code.chars().collect();
    let mut stack = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    match (chars.get(i), chars.get(i + 1)) {
                        (None, _) => return Scan::Unterminated,
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 1;
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            'r' | 'b' if is_raw_string_start(&chars, i) => {
                let mut j = i + 1;
                if chars[j] == 'r' {
                    j += 1;
                }
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                j += 1; // opening quote
                loop {
                    match chars.get(j) {
                        None => return Scan::Unterminated,
                        Some('"') if (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) => {
                            j += hashes;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                i = j;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Scan::Unterminated,
                        Some('\\') => i += 2,
                        Some('"') => break,
                        _ => i += 1,
                    }
                }
            }
            '\'' => {
                // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
                if next == Some('\\') {
                    let mut j = i + 2;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                    i = j;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Scan::Mismatched;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() { Scan::Balanced } else { Scan::Open(stack.len()) }
}

fn is_raw_string_start(chars: &[char], i: usize) -> bool {
    // Not part of an identifier such as `bar"`.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    if chars[i] == 'b' {
        if chars.get(j) != Some(&'r') {
            return false;
        }
        j += 1;
    }
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// `?std::vec::Vec` asks for the documentation of a path, shown in the pager. The prefix form
/// is used because a trailing `?` is Rust's try operator.
pub fn help_query(code: &str) -> Option<&str> {
    let path = code.trim().strip_prefix('?')?.trim();
    let is_path = !path.is_empty()
        && path.split("::").all(|seg| {
            let seg = seg.trim();
            !seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '!' || c == '.')
        });
    is_path.then_some(path)
}

/// The part of a rust-analyzer completion a Jupyter frontend can insert: frontends have no
/// snippet support, so `with_capacity(capacity)` becomes `with_capacity` and `println!($0)`
/// becomes `println!`.
pub fn insertable(code: &str) -> &str {
    let end = code.find(['(', '[', '{', '$', ' ']).unwrap_or(code.len());
    if end == 0 { code } else { &code[..end] }
}

/// Byte offset of the `chars`-th code point (clamped to the end).
pub fn byte_offset(code: &str, chars: usize) -> usize {
    code.char_indices().nth(chars).map(|(b, _)| b).unwrap_or(code.len())
}

/// Code-point index of byte offset `bytes` (clamped, rounded down to a char boundary).
pub fn char_offset(code: &str, bytes: usize) -> usize {
    let mut b = bytes.min(code.len());
    while !code.is_char_boundary(b) {
        b -= 1;
    }
    code[..b].chars().count()
}

/// Extends a byte offset to the end of the identifier it is in (for hover/inspect).
pub fn word_end(code: &str, bytes: usize) -> usize {
    let mut end = bytes.min(code.len());
    while !code.is_char_boundary(end) {
        end -= 1;
    }
    for (i, c) in code[end..].char_indices() {
        if !(c.is_alphanumeric() || c == '_') {
            return end + i;
        }
    }
    code.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Completeness::*;

    #[test]
    fn completeness() {
        let cases: &[(&str, Completeness)] = &[
            ("fn foo(", Incomplete("    ".into())),
            ("let x = {", Incomplete("    ".into())),
            ("let x = {\n  vec![1,\n", Incomplete("        ".into())),
            ("let s = \"abc", Incomplete(String::new())),
            ("/* open", Incomplete(String::new())),
            ("let x =", Incomplete(String::new())),
            ("let = ;", Invalid),
            ("let x = (1];", Invalid),
            ("}", Invalid),
            ("1", Complete),
            ("6*7", Complete),
            ("fn main() {}", Complete),
            ("let c = '{'; let s = \"}\"; // )", Complete),
            ("let r = r#\"a \" ( b\"#;", Complete),
            ("fn f<'a>(x: &'a str) -> &'a str { x }", Complete),
            (":dep polars = \"0.55\"", Complete),
            (":dep foo\nlet x = 1;", Complete),
            ("", Complete),
            ("std::collections::HashMap::<u8, u8>::new()", Complete),
        ];
        for (code, want) in cases {
            assert_eq!(&is_complete(code), want, "{code:?}");
        }
    }

    #[test]
    fn insertable_completions() {
        for (code, want) in [("with_capacity(capacity)", "with_capacity"), ("println!($0)", "println!"), ("HashMap", "HashMap"), ("vec![$0]", "vec!")] {
            assert_eq!(insertable(code), want);
        }
    }

    #[test]
    fn help_queries() {
        assert_eq!(help_query("?std::vec::Vec"), Some("std::vec::Vec"));
        assert_eq!(help_query("  ? numbers.len \n"), Some("numbers.len"));
        assert_eq!(help_query("result?"), None);
        assert_eq!(help_query("?"), None);
        assert_eq!(help_query("?a + b"), None);
    }

    #[test]
    fn offsets_count_code_points() {
        let code = "let é = \"😀\"; x";
        let byte = byte_offset(code, 12);
        assert_eq!(&code[byte..], " x");
        assert_eq!(char_offset(code, byte), 12);
        assert_eq!(byte_offset(code, 999), code.len());
        assert_eq!(word_end("foo.bar_baz(1)", 5), 11);
    }
}
