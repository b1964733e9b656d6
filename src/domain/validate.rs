//! Parsing at the boundary: once one of these values exists, it is valid.

/// Why an input was refused: a stable snake_case `code` and a zh-CN `message` for the person
/// who typed it. The HTTP layer answers it with 422 (`From<ValidationError> for AppError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ValidationError {
    pub code: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ValidationError {
            code,
            message: message.into(),
        }
    }
}

/// A mainland China mobile number, normalised to 11 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, ValidationError> {
        let digits: String = raw
            .trim()
            .trim_start_matches("+86")
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let ok = digits.len() == 11
            && digits.starts_with('1')
            && digits.chars().all(|c| c.is_ascii_digit())
            && digits.as_bytes()[1] >= b'3';
        if ok {
            Ok(Phone(digits))
        } else {
            Err(ValidationError::new(
                "invalid_phone",
                "手机号格式不正确，应为 11 位中国大陆手机号",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`: what staff see unless they explicitly reveal it.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

pub fn mask_phone(p: &str) -> String {
    if p.len() == 11 && p.is_ascii() {
        format!("{}****{}", &p[..3], &p[7..])
    } else {
        "****".into()
    }
}

/// A staff or admin login name: 3–32 of a–z, 0–9, `_`, `.`, `-`; stored lowercase.
pub fn username(raw: &str) -> Result<String, ValidationError> {
    let u = clean("username", raw, Lines::One)?.to_lowercase();
    let ok = (3..=32).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(u)
    } else {
        Err(ValidationError::new(
            "invalid_username",
            "用户名须为 3–32 位小写字母、数字、下划线、点或短横线",
        ))
    }
}

pub fn password(raw: &str) -> Result<(), ValidationError> {
    let n = raw.chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "weak_password",
            "密码长度须为 8–128 个字符",
        ))
    }
}

/// Whether a text may hold line breaks and tabs (descriptions, notes, comments) or is one
/// line (titles, names, search terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// The one rule for every text a client sends: refused when it holds NUL or another control
/// character (line breaks and tabs only in `Lines::Many` texts; `\r\n` becomes `\n`) or a
/// bidirectional override or isolate, which can make a title read differently from what is
/// stored; otherwise normalised to NFC and trimmed. PostgreSQL cannot store NUL at all, so this
/// is also what keeps a client's bytes from ever becoming a 500.
pub fn clean(field: &str, raw: &str, lines: Lines) -> Result<String, ValidationError> {
    use unicode_normalization::UnicodeNormalization;
    let unified;
    let raw = if lines == Lines::Many && raw.contains('\r') {
        unified = raw.replace("\r\n", "\n");
        unified.as_str()
    } else {
        raw
    };
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\t');
    if raw
        .chars()
        .any(|c| (c.is_control() && !allowed(c)) || is_bidi_control(c))
    {
        return Err(ValidationError::new(
            "invalid_text",
            format!("{field} 含有不允许的字符（控制字符或文字方向控制符）"),
        ));
    }
    Ok(raw.nfc().collect::<String>().trim().to_string())
}

/// U+202A–U+202E (embeddings and overrides) and U+2066–U+2069 (isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no room on screen: whitespace and Unicode's default-ignorable code
/// points (zero-width spaces and joiners, format characters, variation selectors, fillers).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// A clean (see [`clean`]), non-empty text of at most `max` characters with at least one
/// visible character, on one line: titles, names, handlers.
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    bounded(field, raw, max, Lines::One)
}

/// Like [`text`], with line breaks and tabs allowed: descriptions, notes, comments, reasons.
pub fn long_text(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    bounded(field, raw, max, Lines::Many)
}

fn bounded(field: &str, raw: &str, max: usize, lines: Lines) -> Result<String, ValidationError> {
    let t = clean(field, raw, lines)?;
    let n = t.chars().count();
    if n == 0 {
        return Err(ValidationError::new(
            "missing_field",
            format!("{field} 不能为空"),
        ));
    }
    if t.chars().all(is_invisible) {
        return Err(ValidationError::new(
            "invalid_text",
            format!("{field} 须包含可见的文字"),
        ));
    }
    if n > max {
        return Err(ValidationError::new(
            "field_too_long",
            format!("{field} 不能超过 {max} 个字符"),
        ));
    }
    Ok(t)
}

/// An optional search term (`?q=`): clean and on one line; absent or blank = none.
pub fn search(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = clean("q", raw, Lines::One)?;
    Ok(Some(t).filter(|t| !t.is_empty()))
}

pub fn email(raw: &str) -> Result<String, ValidationError> {
    let e = clean("email", raw, Lines::One)?;
    let e = e.as_str();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !e.contains(char::is_whitespace);
    if valid {
        Ok(e.to_string())
    } else {
        Err(ValidationError::new("invalid_email", "邮箱地址格式不正确"))
    }
}

/// A street's short code used in ticket references (`YC-20261127-0042`).
pub fn street_code(raw: &str) -> Result<String, ValidationError> {
    let c = raw.trim().to_uppercase();
    if (2..=8).contains(&c.len())
        && c.chars()
            .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
    {
        Ok(c)
    } else {
        Err(ValidationError::new(
            "invalid_code",
            "街道代码须为 2–8 位大写字母或数字",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalised_and_masked() {
        let p = Phone::parse("+86 138-0013-8000").expect("valid");
        assert_eq!(p.as_str(), "13800138000");
        assert_eq!(p.masked(), "138****8000");
        assert!(Phone::parse("12345").is_err());
        assert!(Phone::parse("12800138000").is_err());
        assert!(Phone::parse("1380013800a").is_err());
    }

    #[test]
    fn text_is_trimmed_and_bounded_by_characters_not_bytes() {
        assert_eq!(text("标题", "  漏水 ", 80).expect("ok"), "漏水");
        assert!(text("标题", "   ", 80).is_err());
        assert!(text("标题", &"水".repeat(80), 80).is_ok());
        assert!(text("标题", &"水".repeat(81), 80).is_err());
    }

    #[test]
    fn control_characters_and_bidi_controls_are_refused() {
        for bad in [
            "漏\u{0}水",
            "a\u{7}b",
            "a\u{1b}[31mb",
            "a\u{7f}b",
            "a\u{85}b",
            "\u{202E}gnp.exe",
            "a\u{2066}b\u{2069}",
            "两行\n标题",
        ] {
            let e = text("title", bad, 80).expect_err(bad);
            assert_eq!(e.code, "invalid_text", "{bad:?}");
        }
        assert_eq!(
            long_text("note", "第一行\r\n\t第二行", 2000).expect("ok"),
            "第一行\n\t第二行"
        );
        assert_eq!(
            long_text("note", "a\u{0}", 2000).expect_err("nul").code,
            "invalid_text"
        );
        assert_eq!(
            username("ad\u{0}min").expect_err("nul").code,
            "invalid_text"
        );
        assert_eq!(email("a\u{0}@b.cn").expect_err("nul").code, "invalid_text");
        assert_eq!(search(Some("\u{0}")).expect_err("nul").code, "invalid_text");
        assert_eq!(search(Some("  ")).expect("blank"), None);
    }

    #[test]
    fn text_is_nfc_and_must_show_something() {
        // "é" as e + combining acute becomes the one precomposed character.
        assert_eq!(text("name", "Cafe\u{301}", 10).expect("ok"), "Caf\u{e9}");
        for invisible in [
            "\u{200B}\u{200B}",
            "\u{200D}\u{FEFF}",
            "\u{3000}\u{2060}",
            "\u{FE0F}",
        ] {
            let e = text("title", invisible, 80).expect_err(invisible);
            assert!(
                matches!(e.code, "invalid_text" | "missing_field"),
                "{invisible:?}"
            );
        }
        assert_eq!(
            text("title", "\u{200B}漏水", 80).expect("visible"),
            "\u{200B}漏水"
        );
    }

    #[test]
    fn usernames_codes_emails_passwords() {
        assert_eq!(username(" Admin ").expect("ok"), "admin");
        assert!(username("a b").is_err());
        assert!(username("ab").is_err());
        assert_eq!(street_code("yc").expect("ok"), "YC");
        assert!(street_code("Y-C").is_err());
        assert!(email("a@b.cn").is_ok());
        assert!(email("a@b").is_err());
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
    }
}
