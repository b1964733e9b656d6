//! Logging with `tracing`: text for people, JSON for collectors.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    // Both filters were checked by `config::log_filter` when the settings loaded.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(settings.level.clone()));
    // Logs go to stderr so that commands printing JSON on stdout stay machine-readable.
    let result = match settings.format {
        LogFormat::Text => fmt()
            .fmt_fields(escaped_fields())
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    // A second init (tests) is harmless.
    let _ = result;
}

/// The text format's fields with every control character and bidi control escaped, so that a
/// value holding a client's text (a path, an error that quotes the request) stays on its own
/// line and reads as what it is: one event is always exactly one line.
pub fn escaped_fields() -> impl for<'w> fmt::FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(|w: &mut Writer<'_>, field: &tracing::field::Field, value| {
        let name = field.name();
        // What tracing-log adds to records from the `log` crate is already in the metadata.
        if name.starts_with("log.") {
            return Ok(());
        }
        let text = format!("{value:?}");
        if name == "message" {
            write!(w, "{}", Escaped(&text))
        } else {
            write!(w, "{name}={}", Escaped(&text))
        }
    })
    .delimited(" ")
}

struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control()
                    || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') =>
                {
                    write!(f, "\\u{{{:x}}}", c as u32)?
                }
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_forged_line_stays_escaped_on_its_own_line() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = fmt()
            .fmt_fields(escaped_fields())
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        let forged =
            "x\n2026-11-29T10:00:00Z  INFO huying::api::auth: signed in user_id=1 role=admin";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", path = %format!("/a\u{1b}[2J{forged}"));
            let _e = span.enter();
            tracing::warn!(error = %forged, other = ?forged, "bad \u{202E}input: {forged}");
        });
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("error=x\\n2026-11-29T10:00:00Z"), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
        assert!(text.contains("bad \\u{202e}input"), "{text}");
    }
}
