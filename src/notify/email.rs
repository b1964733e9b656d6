//! Email over SMTP with lettre on pooled tokio connections of our own (see [`SmtpConnector`]), STARTTLS / TLS / plain, multipart
//! (plain text + HTML), and a `Message-ID` of our own so a resend can be recognised.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use deadpool::managed::{Manager, Metrics, Object, Pool, PoolError, RecycleError, RecycleResult};
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
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
    pool: Pool<SmtpConnector>,
    from: Mailbox,
    /// Right-hand side of our Message-IDs.
    domain: String,
}

/// Opens SMTP connections for the pool. lettre's own pooled transport opens its sockets
/// without `TCP_NODELAY`, and it writes a message's body and the closing `.` line in two
/// writes: Nagle's algorithm then holds the closing line until the relay's delayed ACK, about
/// 40 ms per message on Linux, which capped delivery at in-flight / 40 ms (~180 emails/s with
/// 8 in flight). So the socket is ours, with `TCP_NODELAY`, and lettre speaks SMTP on it.
pub struct SmtpConnector {
    host: String,
    port: u16,
    timeout: Duration,
    tls: ConnectTls,
    hello: ClientId,
    credentials: Option<Credentials>,
}

enum ConnectTls {
    None,
    /// STARTTLS after the greeting, required (a relay that does not offer it is an error).
    Starttls(TlsParameters),
    /// TLS from the first byte (SMTPS, usually port 465).
    Wrapper(tokio_native_tls::TlsConnector),
}

/// Connections idle longer than this are checked with a NOOP before they carry a message; a
/// relay drops idle clients after its own timeout (often 60 s to 5 min).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(15);

impl Manager for SmtpConnector {
    type Type = AsyncSmtpConnection;
    type Error = SendError;

    async fn create(&self) -> Result<AsyncSmtpConnection, SendError> {
        match tokio::time::timeout(self.timeout, self.open()).await {
            Ok(opened) => opened,
            Err(_) => Err(SendError::Temporary("SMTP connect timed out".into())),
        }
    }

    async fn recycle(
        &self,
        conn: &mut AsyncSmtpConnection,
        metrics: &Metrics,
    ) -> RecycleResult<Self::Error> {
        if conn.has_broken() {
            return Err(RecycleError::message("connection broken"));
        }
        if metrics.last_used() > CHECK_IDLE_AFTER {
            let alive = tokio::time::timeout(self.timeout, conn.test_connected()).await;
            if !matches!(alive, Ok(true)) {
                return Err(RecycleError::message("connection closed by the relay"));
            }
        }
        Ok(())
    }
}

impl SmtpConnector {
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let network = |e: &dyn std::fmt::Display| SendError::Temporary(format!("network: {e}"));
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| network(&e))?;
        tcp.set_nodelay(true).map_err(|e| network(&e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            ConnectTls::Wrapper(connector) => Box::new(SmtpsStream(
                connector
                    .connect(&self.host, tcp)
                    .await
                    .map_err(|e| network(&e))?,
            )),
            ConnectTls::None | ConnectTls::Starttls(_) => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(classify)?;
        if let ConnectTls::Starttls(params) = &self.tls {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    }
}

/// An SMTPS connection in the shape lettre takes over (it implements its stream trait only for
/// plain TCP).
#[derive(Debug)]
struct SmtpsStream(tokio_native_tls::TlsStream<tokio::net::TcpStream>);

impl AsyncTokioStream for SmtpsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().get_ref().get_ref().peer_addr()
    }
}

impl tokio::io::AsyncRead for SmtpsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SmtpsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Mailer {
    pub fn new(s: &EmailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("email.from `{}`: {e}", s.from))?;
        let smtp = &s.smtp;
        let tls = match smtp.tls {
            SmtpTls::Starttls => ConnectTls::Starttls(
                TlsParameters::builder(smtp.host.clone())
                    .dangerous_accept_invalid_certs(smtp.accept_invalid_certs)
                    .dangerous_accept_invalid_hostnames(smtp.accept_invalid_certs)
                    .build_native()?,
            ),
            SmtpTls::Tls => ConnectTls::Wrapper(
                native_tls::TlsConnector::builder()
                    .min_protocol_version(Some(native_tls::Protocol::Tlsv12))
                    .danger_accept_invalid_certs(smtp.accept_invalid_certs)
                    .danger_accept_invalid_hostnames(smtp.accept_invalid_certs)
                    .build()?
                    .into(),
            ),
            SmtpTls::None => ConnectTls::None,
        };
        let credentials = (!smtp.username.is_empty()).then(|| {
            Credentials::new(
                smtp.username.clone(),
                smtp.password.expose_secret().to_string(),
            )
        });
        let timeout = Duration::from_secs(smtp.timeout_secs.max(1));
        let connector = SmtpConnector {
            host: smtp.host.clone(),
            port: smtp.port,
            timeout,
            tls,
            hello: ClientId::default(),
            credentials,
        };
        let pool = Pool::builder(connector)
            .max_size(smtp.pool_size.max(1) as usize)
            .build()?;
        let domain = from.email.domain().to_string();
        Ok(Mailer { pool, from, domain })
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
        let (envelope, bytes) = (msg.envelope(), msg.formatted());
        let mut conn = self.checkout().await?;
        match self.exchange(conn, envelope, &bytes).await {
            // A pooled connection the relay has meanwhile closed (a restart, its idle timeout
            // shorter than [`CHECK_IDLE_AFTER`]) fails on its first command; one more try on a
            // new connection spares the message a retry minutes later.
            Err((SendError::Temporary(_), true)) => {
                conn = self.checkout().await?;
                self.exchange(conn, envelope, &bytes)
                    .await
                    .map_err(|(e, _)| e)
            }
            sent => sent.map_err(|(e, _)| e),
        }
    }

    async fn checkout(&self) -> Result<Object<SmtpConnector>, SendError> {
        match self.pool.get().await {
            Ok(conn) => Ok(conn),
            Err(PoolError::Backend(e)) => Err(e),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }

    /// One message on `conn`; an error comes with whether the connection had carried messages
    /// before (so the relay may have dropped it while it sat in the pool).
    async fn exchange(
        &self,
        mut conn: Object<SmtpConnector>,
        envelope: &lettre::address::Envelope,
        bytes: &[u8],
    ) -> Result<(), (SendError, bool)> {
        let reused = Object::metrics(&conn).recycle_count > 0;
        // The connect timeout also bounds a message's whole exchange (MAIL, RCPT, DATA, body).
        let limit = self.pool.manager().timeout;
        let sent = tokio::time::timeout(limit, conn.send(envelope, bytes)).await;
        let e = match sent {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => classify(e),
            Err(_) => SendError::Temporary("SMTP exchange timed out".into()),
        };
        // lettre has sent QUIT after a failed exchange, and one cut off by the timeout is in
        // an unknown state: the pool must not hand this connection out again.
        drop(Object::take(conn));
        Err((e, reused))
    }
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        // 5xx: the server refuses this message for good (unknown mailbox, policy).
        SendError::Permanent(e.to_string())
    } else {
        // 4xx, connection refused, timeouts, TLS trouble: try again later.
        SendError::Temporary(e.to_string())
    }
}
