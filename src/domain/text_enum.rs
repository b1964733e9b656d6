//! Closed sets of values that travel as snake_case text: in JSON, in the database and in URLs.
//! One macro writes the text form, the parser and the zh-CN label of each value, so the three
//! cannot drift apart; `src/db/types.rs` maps every such type onto a text column once.

/// A closed set of values with a stable text form and a zh-CN label.
pub trait TextEnum: Sized + Copy + Eq + 'static {
    /// Every value, in declaration order.
    fn all() -> &'static [Self];
    fn as_str(self) -> &'static str;
    fn label_zh(self) -> &'static str;
    fn parse(s: &str) -> Option<Self> {
        Self::all().iter().copied().find(|v| v.as_str() == s)
    }
    /// `{text: label}` for every value, in declaration order.
    fn labels() -> Vec<(&'static str, &'static str)> {
        Self::all()
            .iter()
            .map(|v| (v.as_str(), v.label_zh()))
            .collect()
    }
}

/// Declares an enum whose values are `Variant = ("text", "标签")`.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = ($text:literal, $zh:literal) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl $crate::domain::text_enum::TextEnum for $name {
            fn all() -> &'static [Self] {
                &$name::ALL
            }
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn label_zh(self) -> &'static str {
                $name::label_zh(self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
