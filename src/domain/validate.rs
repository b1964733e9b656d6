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
    let u = raw.trim().to_lowercase();
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

/// A trimmed, non-empty text of at most `max` characters.
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 {
        return Err(ValidationError::new(
            "missing_field",
            format!("{field} 不能为空"),
        ));
    }
    if n > max {
        return Err(ValidationError::new(
            "field_too_long",
            format!("{field} 不能超过 {max} 个字符"),
        ));
    }
    Ok(t.to_string())
}

pub fn email(raw: &str) -> Result<String, ValidationError> {
    let e = raw.trim();
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
