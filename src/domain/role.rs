use super::org::OrgKind;
use crate::text_enum;

text_enum! {
    /// What a user is in the chain.
    pub enum Role {
        Resident = ("resident", "居民"),
        CompoundStaff = ("compound_staff", "小区党支部"),
        CommunityStaff = ("community_staff", "社区党支部"),
        StreetStaff = ("street_staff", "街党工委"),
        Admin = ("admin", "管理员"),
    }
}

impl Role {
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
}

text_enum! {
    /// Who wrote a timeline entry: a person in one of the roles, or the system (the sweeper).
    pub enum ActorRole {
        Resident = ("resident", "居民"),
        CompoundStaff = ("compound_staff", "小区党支部"),
        CommunityStaff = ("community_staff", "社区党支部"),
        StreetStaff = ("street_staff", "街党工委"),
        Admin = ("admin", "管理员"),
        System = ("system", "系统"),
    }
}

impl From<Role> for ActorRole {
    fn from(r: Role) -> ActorRole {
        match r {
            Role::Resident => ActorRole::Resident,
            Role::CompoundStaff => ActorRole::CompoundStaff,
            Role::CommunityStaff => ActorRole::CommunityStaff,
            Role::StreetStaff => ActorRole::StreetStaff,
            Role::Admin => ActorRole::Admin,
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
