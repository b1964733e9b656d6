//! Email over SMTP with lettre: a pooled tokio transport, STARTTLS / TLS / plain, multipart
//! (plain text + HTML), and a `Message-ID` of our own so a resend can be recognised.

use std::time::Duration;

use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{EmailSettings, SmtpTls};

/// How a send failed, for the retry decision.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary: {0}")]
    Temporary(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Right-hand side of our Message-IDs.
    domain: String,
}

impl Mailer {
    pub fn new(s: &EmailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("email.from `{}`: {e}", s.from))?;
        let smtp = &s.smtp;
        let tls_params = || {
            TlsParameters::builder(smtp.host.clone())
                .dangerous_accept_invalid_certs(smtp.accept_invalid_certs)
                .dangerous_accept_invalid_hostnames(smtp.accept_invalid_certs)
                .build_native()
        };
        let tls = match smtp.tls {
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(smtp.pool_size.max(1)));
        if !smtp.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                smtp.username.clone(),
                smtp.password.expose_secret().to_string(),
            ));
        }
        let domain = from.email.domain().to_string();
        Ok(Mailer {
            transport: builder.build(),
            from,
            domain,
        })
    }

    /// Builds the message for outbox row `id`.
    pub fn message(
        &self,
        id: i64,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<Message, SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<notification-{id}@{}>", self.domain)))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| SendError::Permanent(format!("cannot build message: {e}")))
    }

    pub async fn send(&self, msg: Message) -> Result<(), SendError> {
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            // 5xx: the server refuses this message for good (unknown mailbox, policy).
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            // 4xx, connection refused, timeouts, TLS trouble: try again later.
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}
