//! A cell's final expression shown in one build instead of two.
//!
//! evcxr first compiles `(expr).evcxr_display();`; when that does not compile (the value has
//! no display of its own), it compiles the cell again, printing the value with `Debug`. So a
//! cell ending in `x + 1` or `df.height()` cost two builds: about 0.07 s more on a warm kernel,
//! about 0.4 s more once polars is loaded (each build checks polars' packages).
//!
//! The kernel adds, hidden, at start, a trait that gives every `Debug` value an
//! `evcxr_display` printing exactly what evcxr's fallback prints, so the first build succeeds.
//! Method lookup tries a receiver by value, then `&T`, then `&mut T`, and within one step an
//! inherent method beats a trait method. So a display of the type's own (an inherent
//! `evcxr_display(&self)`, as plotters and friends have) still wins.
//!
//! The trait comes in two forms ([`Mode`]). Until the notebook uses the SDK, it is implemented
//! for `&T`, found at the `&T` step: every value, a bare variable included, builds once. The
//! SDK's `kiln::display::EvcxrDisplay` (rich DataFrames, tables) is found at that same step,
//! and two traits there are ambiguous; so before the first cell whose `:dep` names `kiln`, the
//! kernel moves to a `&mut self` method, found one step later, after the SDK's. A value whose
//! `&mut` cannot be taken (a variable not declared `mut`) that the SDK does not display falls
//! back as before: slower, never different.
//!
//! evcxr's fallback follows `:fmt` and `:types`; this trait does not. Before the first cell
//! that uses either, the kernel replaces it by one without the method, for good.

/// Which form of the trait is in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// For `&T`: every `Debug` value, in one build.
    Own,
    /// `&mut self`: after the SDK's display, never ambiguous with it.
    BesideSdk,
    /// No method: evcxr's own fallback shows every value.
    Off,
}

/// The hidden code run once at start: the trait, and a use that puts it in scope of every
/// cell (later forms redefine the module; the use stays).
pub fn install() -> String {
    format!("{}\n{SEND}use __kiln_result::Show as _;", module(Mode::Own))
}

/// The module in `mode`'s form.
pub fn module(mode: Mode) -> &'static str {
    match mode {
        Mode::Own => concat!(
            "mod __kiln_result {\n",
            "    pub trait Show { fn evcxr_display(self); }\n",
            "    impl<T: ::std::fmt::Debug + ?Sized> Show for &T {\n",
            "        fn evcxr_display(self) { super::__kiln_result_send(&::std::format!(\"{:?}\", self)); }\n",
            "    }\n",
            "}"
        ),
        Mode::BesideSdk => concat!(
            "mod __kiln_result {\n",
            "    pub trait Show { fn evcxr_display(&mut self); }\n",
            "    impl<T: ::std::fmt::Debug + ?Sized> Show for T {\n",
            "        fn evcxr_display(&mut self) { super::__kiln_result_send(&::std::format!(\"{:?}\", self)); }\n",
            "    }\n",
            "}"
        ),
        Mode::Off => "mod __kiln_result { pub trait Show {} }",
    }
}

/// Prints `text` as evcxr's fallback does (a plain-text content block; exit if stdout is gone).
const SEND: &str = r#"fn __kiln_result_send(text: &str) {
    use ::std::io::Write as _;
    let mut out = ::std::io::stdout().lock();
    let sent = out
        .write_all(b"EVCXR_BEGIN_CONTENT text/plain
")
        .and_then(|_| out.write_all(text.as_bytes()))
        .and_then(|_| out.write_all(b"
EVCXR_END_CONTENT
"));
    if let Err(error) = sent {
        ::std::eprintln!("Failed to send content to parent: {:?}", error);
        ::std::process::exit(1);
    }
}
"#;

/// Whether a completion names the kernel's hidden items (or the display method every value
/// now has), which the user never wrote and should not be offered.
pub fn is_hidden_completion(text: &str) -> bool {
    text.starts_with("__kiln_result") || text.starts_with("evcxr_display")
}

/// The form the trait must have before `code` runs, given the form it has now.
pub fn wanted(now: Mode, code: &str) -> Mode {
    if now == Mode::Off || changes_formatting(code) {
        Mode::Off
    } else if now == Mode::Own && names_sdk(code) {
        Mode::BesideSdk
    } else {
        now
    }
}

/// Whether `code` changes how evcxr formats a final expression (`:fmt`, `:types`).
fn changes_formatting(code: &str) -> bool {
    commands(code).any(|(command, _)| command == ":fmt" || command == ":types")
}

/// Whether a `:dep` line of `code` names the SDK (as the crate, its package or a path part).
fn names_sdk(code: &str) -> bool {
    commands(code)
        .filter(|(command, _)| *command == ":dep")
        .any(|(_, rest)| rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).any(|word| word == "kiln"))
}

/// The evcxr commands of `code`: each line that starts with `:word`, split after the word.
fn commands(code: &str) -> impl Iterator<Item = (&str, &str)> {
    code.lines().filter_map(|line| {
        let line = line.trim_start();
        if !line.starts_with(':') {
            return None;
        }
        let end = line.find(char::is_whitespace).unwrap_or(line.len());
        Some(line.split_at(end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_each_cell_needs() {
        use Mode::*;
        let cases = [
            (Own, "let x = 1;\nx", Own),
            (Own, ":fmt {:#?}", Off),
            (Own, "let x = 1;\n  :fmt", Off),
            (Own, ":types", Off),
            (BesideSdk, ":types\n1 + 1", Off),
            (Own, ":typesx", Own),
            (Own, ":fmtx", Own),
            (Own, "let fmt = 1;", Own),
            (Own, "// :fmt is a command", Own),
            (Own, ":dep polars = \"0.55\"", Own),
            (Own, ":dep kiln = { path = \"/src/server-client/client\" }\nuse kiln::prelude::*;", BesideSdk),
            (Own, ":dep sdk = { package = \"kiln\", version = \"0.1\" }", BesideSdk),
            (Own, ":dep kiln_deps = { path = \"/slot/kiln_deps\" }", Own),
            (Own, "use kiln::prelude::*;", Own),
            (BesideSdk, ":dep polars = \"0.55\"", BesideSdk),
            (BesideSdk, ":dep kiln", BesideSdk),
            (Off, ":dep kiln", Off),
            (Off, "1 + 1", Off),
        ];
        for (now, code, expected) in cases {
            assert_eq!(wanted(now, code), expected, "{now:?} {code:?}");
        }
    }

    #[test]
    fn hidden_completions() {
        for (text, hidden) in [("evcxr_display()", true), ("__kiln_result", true), ("__kiln_result_send(…)", true), ("len()", false), ("display", false)] {
            assert_eq!(is_hidden_completion(text), hidden, "{text}");
        }
    }

    #[test]
    fn every_form_defines_the_module_the_use_names() {
        for mode in [Mode::Own, Mode::BesideSdk, Mode::Off] {
            assert!(module(mode).starts_with("mod __kiln_result {"), "{mode:?}");
            assert!(module(mode).contains("pub trait Show"), "{mode:?}");
        }
    }
}
