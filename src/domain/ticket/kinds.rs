//! The closed sets a ticket is described with: levels, statuses, urgencies, actions, timeline
//! event kinds, reasons. Their zh-CN labels are the only ones: the pages read them from
//! `GET /api/v1/meta/labels`.

use crate::domain::role::Role;
use crate::text_enum;

text_enum! {
    /// Which branch is accountable now.
    pub enum Level {
        Compound = ("compound", "小区党支部"),
        Community = ("community", "社区党支部"),
        Street = ("street", "街党工委"),
    }
}

impl Level {
    /// The level a call goes up to; the street has none above it.
    pub fn up(self) -> Option<Level> {
        match self {
            Level::Compound => Some(Level::Community),
            Level::Community => Some(Level::Street),
            Level::Street => None,
        }
    }

    pub fn down(self) -> Option<Level> {
        match self {
            Level::Compound => None,
            Level::Community => Some(Level::Compound),
            Level::Street => Some(Level::Community),
        }
    }

    /// The staff role that answers at this level.
    pub fn staff_role(self) -> Role {
        match self {
            Level::Compound => Role::CompoundStaff,
            Level::Community => Role::CommunityStaff,
            Level::Street => Role::StreetStaff,
        }
    }

    pub fn of_role(role: Role) -> Option<Level> {
        match role {
            Role::CompoundStaff => Some(Level::Compound),
            Role::CommunityStaff => Some(Level::Community),
            Role::StreetStaff => Some(Level::Street),
            Role::Resident | Role::Admin => None,
        }
    }
}

text_enum! {
    /// Where a ticket stands at its accountable level.
    pub enum Status {
        Open = ("open", "待受理"),
        Acknowledged = ("acknowledged", "处理中"),
        Resolved = ("resolved", "已办结待确认"),
        Closed = ("closed", "已完成"),
        Declined = ("declined", "不予受理"),
        /// A compound or community declined it; the level above checks the decline.
        DeclineReview = ("decline_review", "不予受理复核中"),
        Withdrawn = ("withdrawn", "已撤回"),
    }
}

impl Status {
    /// Waiting for the accountable level to act.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::Acknowledged)
    }

    /// Nothing can happen to the ticket any more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Closed | Status::Withdrawn)
    }
}

text_enum! {
    pub enum Urgency {
        Normal = ("normal", "一般"),
        Urgent = ("urgent", "紧急"),
    }
}

text_enum! {
    /// What a person does to a ticket (`POST /tickets/{id}/{action}`).
    pub enum Action {
        Acknowledge = ("acknowledge", "受理"),
        Comment = ("comment", "回复"),
        Assign = ("assign", "指派"),
        Resolve = ("resolve", "办结"),
        Escalate = ("escalate", "上报"),
        Decline = ("decline", "不予受理"),
        Return = ("return", "退回"),
        Confirm = ("confirm", "确认办结"),
        Dispute = ("dispute", "有异议"),
        Withdraw = ("withdraw", "撤回"),
        RevealPhone = ("reveal_phone", "查看电话"),
        /// 等待居民补充: staff asked the resident for information; the settle clock pauses.
        WaitOnResident = ("wait_on_resident", "等待居民补充"),
        /// 转办: sideways to the right compound of the same community.
        Transfer = ("transfer", "转办"),
        /// 催办: a level above presses the accountable level.
        Urge = ("urge", "催办"),
        /// 提级领办: a level above takes the ticket up to itself.
        TakeOver = ("take_over", "提级领办"),
        RequestExtension = ("request_extension", "申请延期"),
        ApproveExtension = ("approve_extension", "批准延期"),
        RejectExtension = ("reject_extension", "驳回延期"),
        /// Decline review: the decline stands.
        UpholdDecline = ("uphold_decline", "维持不予受理"),
        /// Decline review: the reviewing level takes the ticket itself (`return` sends it back
        /// down with guidance instead).
        OverturnDecline = ("overturn_decline", "撤销不予受理"),
    }
}

impl Action {
    /// The path segment: `POST /tickets/{id}/{action}` (`reveal-phone` with a dash).
    pub fn from_path(s: &str) -> Option<Action> {
        Action::parse(&s.replace('-', "_"))
    }
}

text_enum! {
    /// What a timeline entry records: every person's action, the call itself, and what the
    /// SLA sweeper does on its own.
    pub enum EventKind {
        Create = ("create", "提交诉求"),
        Acknowledge = ("acknowledge", "受理"),
        Comment = ("comment", "回复"),
        Assign = ("assign", "指派"),
        Resolve = ("resolve", "办结"),
        Escalate = ("escalate", "上报"),
        Decline = ("decline", "不予受理"),
        Return = ("return", "退回"),
        Confirm = ("confirm", "确认办结"),
        Dispute = ("dispute", "有异议"),
        Withdraw = ("withdraw", "撤回"),
        RevealPhone = ("reveal_phone", "查看居民电话"),
        WaitOnResident = ("wait_on_resident", "等待居民补充"),
        ClockResumed = ("clock_resumed", "恢复计时"),
        SlaWarning = ("sla_warning", "时限预警"),
        Overdue = ("overdue", "标记超时"),
        AutoClose = ("auto_close", "自动完成"),
        Transfer = ("transfer", "转办"),
        Urge = ("urge", "催办"),
        TakeOver = ("take_over", "提级领办"),
        RequestExtension = ("request_extension", "申请延期"),
        ApproveExtension = ("approve_extension", "批准延期"),
        RejectExtension = ("reject_extension", "驳回延期"),
        UpholdDecline = ("uphold_decline", "维持不予受理"),
        OverturnDecline = ("overturn_decline", "撤销不予受理"),
        /// The approver let an extension request's decision clock run out.
        ExtensionUnanswered = ("extension_unanswered", "延期申请超时未批复"),
        /// A callback (回访) was completed: its verdict, or unreachable.
        Callback = ("callback", "回访"),
        /// A callback found the resident unsatisfied or pressed: the ticket is handled again.
        CallbackReopen = ("callback_reopen", "回访不满意，重新办理"),
    }
}

impl From<Action> for EventKind {
    fn from(a: Action) -> EventKind {
        match a {
            Action::Acknowledge => EventKind::Acknowledge,
            Action::Comment => EventKind::Comment,
            Action::Assign => EventKind::Assign,
            Action::Resolve => EventKind::Resolve,
            Action::Escalate => EventKind::Escalate,
            Action::Decline => EventKind::Decline,
            Action::Return => EventKind::Return,
            Action::Confirm => EventKind::Confirm,
            Action::Dispute => EventKind::Dispute,
            Action::Withdraw => EventKind::Withdraw,
            Action::RevealPhone => EventKind::RevealPhone,
            Action::WaitOnResident => EventKind::WaitOnResident,
            Action::Transfer => EventKind::Transfer,
            Action::Urge => EventKind::Urge,
            Action::TakeOver => EventKind::TakeOver,
            Action::RequestExtension => EventKind::RequestExtension,
            Action::ApproveExtension => EventKind::ApproveExtension,
            Action::RejectExtension => EventKind::RejectExtension,
            Action::UpholdDecline => EventKind::UpholdDecline,
            Action::OverturnDecline => EventKind::OverturnDecline,
        }
    }
}

text_enum! {
    /// Why a level calls a ticket up.
    pub enum EscalationReason {
        BeyondAuthority = ("beyond_authority", "超出本级职权"),
        NeedsResources = ("needs_resources", "需要协调资源"),
        NeedsEnforcement = ("needs_enforcement", "需要执法力量"),
        CrossCompound = ("cross_compound", "涉及多个小区"),
        Other = ("other", "其他"),
    }
}

text_enum! {
    /// The coded reasons a timeline entry carries besides an escalation reason (a decline's
    /// reason, `user:ID` and `rating:N` are free text).
    pub enum SystemReason {
        SlaBreachAcknowledge = ("sla_breach_acknowledge", "超时未受理，自动上报"),
        SlaBreachResolve = ("sla_breach_resolve", "超时未办结，自动上报"),
        ResidentDispute = ("resident_dispute", "居民再次不满意"),
        ClockResumed = ("clock_resumed", "居民已补充，恢复计时"),
        PauseCapReached = ("pause_cap_reached", "暂停时长已满，恢复计时"),
        AcknowledgeClock = ("acknowledge", "受理时限"),
        ResolveClock = ("resolve", "办结时限"),
        SlaBreachReview = ("sla_breach_review", "超时未复核，自动上报"),
        /// A `return` from decline review: the decline was overturned and sent back down.
        DeclineOverturned = ("decline_overturned", "复核撤销不予受理，退回重办"),
    }
}

text_enum! {
    /// How a call reached the system: the resident's own app, entered on a resident's behalf
    /// by staff (代录), or a problem staff found themselves (自查发现).
    pub enum Source {
        App = ("app", "居民自报"),
        Phone = ("phone", "电话代录"),
        Desk = ("desk", "窗口代录"),
        Visit = ("visit", "走访代录"),
        Hotline = ("hotline", "热线转办"),
        OwnFinding = ("own_finding", "自查发现"),
    }
}

impl Source {
    /// Staff entered it (on a resident's behalf or as their own finding).
    pub fn entered_by_staff(self) -> bool {
        self != Source::App
    }
}

text_enum! {
    /// How a ticket was closed. Only `resident`, `callback` and `raising_level` are confirmed
    /// closures; `auto` is resolved but unconfirmed (docs/metrics.md).
    pub enum ClosedBy {
        /// The resident confirmed, with a rating.
        Resident = ("resident", "居民确认"),
        /// Nobody confirmed the resolution in time.
        Auto = ("auto", "超时自动关闭"),
        /// An auto-closed ticket whose resident said in a callback that it was settled.
        Callback = ("callback", "回访确认"),
        /// The decline stands (upheld on review, or the street's own decline).
        Declined = ("declined", "不予受理"),
        Withdrawn = ("withdrawn", "居民撤回"),
        /// An own finding, confirmed by the level that raised it.
        RaisingLevel = ("raising_level", "发现单位确认"),
    }
}

impl ClosedBy {
    /// Someone confirmed the result: the resident, a callback, or the raising level.
    pub fn confirmed(self) -> bool {
        matches!(
            self,
            ClosedBy::Resident | ClosedBy::Callback | ClosedBy::RaisingLevel
        )
    }
}
