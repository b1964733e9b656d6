use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::org::OrgKind;

/// What a user is in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Resident,
    CompoundStaff,
    CommunityStaff,
    StreetStaff,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Resident,
        Role::CompoundStaff,
        Role::CommunityStaff,
        Role::StreetStaff,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::CompoundStaff => "compound_staff",
            Role::CommunityStaff => "community_staff",
            Role::StreetStaff => "street_staff",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The org unit kind a staff account of this role is bound to.
    pub fn unit_kind(self) -> Option<OrgKind> {
        match self {
            Role::CompoundStaff => Some(OrgKind::Compound),
            Role::CommunityStaff => Some(OrgKind::Community),
            Role::StreetStaff => Some(OrgKind::Street),
            Role::Resident | Role::Admin => None,
        }
    }

    pub fn is_staff(self) -> bool {
        self.unit_kind().is_some()
    }

    /// Display name in Chinese.
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Resident => "居民",
            Role::CompoundStaff => "小区党支部",
            Role::CommunityStaff => "社区党支部",
            Role::StreetStaff => "街党工委",
            Role::Admin => "管理员",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_bind_to_their_level() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::CompoundStaff.unit_kind(), Some(OrgKind::Compound));
        assert_eq!(Role::StreetStaff.unit_kind(), Some(OrgKind::Street));
        assert!(!Role::Resident.is_staff());
        assert!(Role::parse("root").is_none());
    }
}
