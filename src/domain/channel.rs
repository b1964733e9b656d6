//! The ways a notification reaches a person.

crate::text_enum! {
    /// How a notification reaches its recipient.
    pub enum Channel {
        InApp = ("inapp", "站内消息"),
        Sms = ("sms", "短信"),
        Email = ("email", "邮件"),
        Wecom = ("wecom", "企业微信"),
    }
}
