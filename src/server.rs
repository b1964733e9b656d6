//! The listening side of the HTTP server: actix-web's application on actix-http's HTTP/1
//! service, as `HttpServer::listen` would set it up, except that every connection's bytes go
//! through [`ParserErrorBodies`].
//!
//! Why: actix-http answers a request it cannot parse (400) or whose head is too large (431)
//! itself, before any application code runs, with an empty body and no hook to change it. Every
//! other error of this service is JSON `{code, message}` with an `X-Request-Id`; the wrapper
//! gives those two answers the same shape on their way out.

use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt as _};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::App;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a keep-alive connection may idle, and how long a client has to send a request head
/// (actix-web's defaults).
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the application built by `factory` (once per worker) on `listener`.
pub fn serve<F, T, B>(listener: TcpListener, workers: usize, factory: F) -> io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let mut builder = Server::build().listen("huying-http", listener, move || {
        let app = factory()
            .into_factory()
            .map_err(|err: actix_web::Error| err.error_response());
        fn_service(|io: TcpStream| async move {
            // Small responses go out at once (what `HttpService::tcp` sets).
            io.set_nodelay(true).map_err(DispatchError::Io)?;
            let peer = io.peer_addr().ok();
            Ok::<_, DispatchError>((ParserErrorBodies::new(io), peer))
        })
        .and_then(
            HttpService::build()
                .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
                .client_request_timeout(REQUEST_HEAD_TIMEOUT)
                .local_addr(addr)
                // The host in AppConfig only feeds URL generation for requests without a Host
                // header; nothing here generates URLs.
                .h1(map_config(app, |_| AppConfig::default())),
        )
    })?;
    if workers > 0 {
        builder = builder.workers(workers);
    }
    Ok(builder.run())
}

/// A connection whose parser-error answers (400/431 with an empty body, which only actix-http's
/// parser sends: every response of the application has a body) are rewritten into the
/// service's JSON error shape before they reach the socket.
pub struct ParserErrorBodies<T> {
    inner: T,
    /// The rewritten answer still to write, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ParserErrorBodies<T> {
    pub fn new(inner: T) -> Self {
        ParserErrorBodies {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer for an empty-bodied 400 or 431 response head at the start of `buf`, if that
/// is what `buf` starts with.
pub fn rewrite_parser_error(buf: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = if buf.starts_with(b"HTTP/1.1 400 ") || buf.starts_with(b"HTTP/1.0 400 ")
    {
        ("bad_request", "请求格式不正确")
    } else if buf.starts_with(b"HTTP/1.1 431 ") || buf.starts_with(b"HTTP/1.0 431 ") {
        ("headers_too_large", "请求头过大")
    } else {
        return None;
    };
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let empty = headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"));
    let typed = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("content-type:"));
    // Only the parser's own answers: no body and no type. The application's errors have both.
    if !empty || typed || buf.len() != end + 4 {
        return None;
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 160);
    out.push_str(status_line);
    out.push_str("\r\n");
    for h in headers
        .iter()
        .filter(|h| !h.to_ascii_lowercase().starts_with("content-length:"))
    {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("x-request-id: {request_id}\r\n"));
    out.push_str("x-content-type-options: nosniff\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    tracing::debug!(
        status = &status_line[9..12],
        code,
        request_id,
        "request rejected by the HTTP parser"
    );
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> ParserErrorBodies<T> {
    /// Writes what is left of a rewritten answer; Ready once nothing is pending.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done >= bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParserErrorBodies<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParserErrorBodies<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if let Some(answer) = rewrite_parser_error(buf) {
            this.pending = Some((answer, 0));
            // The original bytes count as written: the rewritten ones go out in their place.
            return match this.poll_pending(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_parsers_empty_answers_are_rewritten() {
        let parser = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 30 Nov 2026 01:00:00 GMT\r\n\r\n";
        let out =
            String::from_utf8(rewrite_parser_error(parser).expect("rewritten")).expect("utf8");
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("connection: close\r\n"));
        assert!(out.contains("content-type: application/json\r\n"));
        assert!(out.contains("x-request-id: "));
        let (head, body) = out.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["code"], "bad_request");
        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let out = String::from_utf8(rewrite_parser_error(big).expect("431")).expect("utf8");
        assert!(out.contains("\"headers_too_large\""), "{out}");
        // The application's own errors carry a body and a type: untouched.
        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 52\r\ncontent-type: application/json\r\n\r\n{\"code\":\"x\"}";
        assert_eq!(rewrite_parser_error(app), None);
        assert_eq!(
            rewrite_parser_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        // A head not complete in this write is left alone.
        assert_eq!(
            rewrite_parser_error(b"HTTP/1.1 400 Bad Request\r\ncontent-len"),
            None
        );
    }
}
