use crate::text_enum;

text_enum! {
    /// The four kinds of unit in the org tree, top to bottom.
    pub enum OrgKind {
        Street = ("street", "街道"),
        Community = ("community", "社区"),
        Compound = ("compound", "小区"),
        Building = ("building", "楼栋"),
    }
}

impl OrgKind {
    /// The kind a unit of this kind hangs under.
    pub fn parent_kind(self) -> Option<OrgKind> {
        match self {
            OrgKind::Street => None,
            OrgKind::Community => Some(OrgKind::Street),
            OrgKind::Compound => Some(OrgKind::Community),
            OrgKind::Building => Some(OrgKind::Compound),
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
