use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The four kinds of unit in the org tree, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    Street,
    Community,
    Compound,
    Building,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Street => "street",
            OrgKind::Community => "community",
            OrgKind::Compound => "compound",
            OrgKind::Building => "building",
        }
    }

    pub fn parse(s: &str) -> Option<OrgKind> {
        [
            OrgKind::Street,
            OrgKind::Community,
            OrgKind::Compound,
            OrgKind::Building,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The kind a unit of this kind hangs under.
    pub fn parent_kind(self) -> Option<OrgKind> {
        match self {
            OrgKind::Street => None,
            OrgKind::Community => Some(OrgKind::Street),
            OrgKind::Compound => Some(OrgKind::Community),
            OrgKind::Building => Some(OrgKind::Compound),
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            OrgKind::Street => "街道",
            OrgKind::Community => "社区",
            OrgKind::Compound => "小区",
            OrgKind::Building => "楼栋",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_hangs_under_the_one_above() {
        assert_eq!(OrgKind::Street.parent_kind(), None);
        assert_eq!(OrgKind::Community.parent_kind(), Some(OrgKind::Street));
        assert_eq!(OrgKind::Compound.parent_kind(), Some(OrgKind::Community));
        assert_eq!(OrgKind::Building.parent_kind(), Some(OrgKind::Compound));
        assert_eq!(OrgKind::parse("compound"), Some(OrgKind::Compound));
        assert_eq!(OrgKind::parse("grid"), None);
    }
}
