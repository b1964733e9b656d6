//! Partner systems that post calls through Open311 (docs/open311.md): the 12345 platform, a
//! WeChat mini program. Each holds keys an admin issued; the key decides the tickets' source.

use crate::domain::ticket::Source;
use crate::text_enum;

text_enum! {
    /// How a partner's calls reach us, and so the source its tickets get.
    pub enum PartnerSource {
        /// A hotline platform passing calls on (12345).
        Hotline = ("hotline", "热线转办"),
        /// An app the resident uses (a mini program).
        App = ("app", "居民自报"),
    }
}

impl PartnerSource {
    pub fn ticket_source(self) -> Source {
        match self {
            PartnerSource::Hotline => Source::Hotline,
            PartnerSource::App => Source::App,
        }
    }
}

/// What every partner key starts with, so a leaked one is recognisable in a log or a repository.
pub const KEY_PREFIX: &str = "hy311_";

/// How many leading characters of a key are kept to tell keys apart (the prefix and 6 more).
pub const VISIBLE_CHARS: usize = KEY_PREFIX.len() + 6;

/// The default and the bounds of a key's rate limit (requests per minute).
pub const DEFAULT_RATE_PER_MINUTE: i32 = 60;
pub const MAX_RATE_PER_MINUTE: i32 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partner_source_is_a_ticket_source_of_the_same_name() {
        for s in PartnerSource::ALL {
            assert_eq!(s.ticket_source().as_str(), s.as_str());
        }
    }
}
