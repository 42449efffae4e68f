//! Request bodies the server will not take, or did not read.
//!
//! Owns: which declared bodies a route refuses before any handler runs (longer than the
//! route's limit, or any body for a route that takes none — also before `100 Continue`), and
//! keeping an unread chunked body's connection from outliving its answer. Must never: read a
//! body itself, or let a client hold a connection by sending a body nobody reads: actix-http
//! closes the connection after answering a request whose `Content-Length` body was not read,
//! but would read and discard an unread *chunked* body for as long as the client sends it.
//! So the chunked body stays owned by the answer's body ([`KeepUnread`]) until it is written,
//! and the connection is closed after it instead.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, RequestHead, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::{Stream, StreamExt};

use super::problem::ApiError;
use super::{cabinet, portal};

/// Body size limit for routes that take no larger body.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The largest body a request may declare for the route its method and path (as sent) name:
/// 0 for every route that takes none. Read before `100 Continue` is sent, so that a body the
/// route will refuse is never invited.
pub fn body_limit(method: &actix_web::http::Method, path: &str) -> usize {
    if method != actix_web::http::Method::POST {
        return 0;
    }
    // `/ocsp/` (a base URL with a trailing slash) takes POST like `/ocsp`, and GET too.
    if path == "/ocsp/" {
        return crate::ocsp::MAX_REQUEST_LEN;
    }
    post_body_limit(path)
        .or_else(|| super::pages::post_body_limit(path))
        .unwrap_or(0)
}

/// The body limit of a route that answers only POST, or `None` for any other path.
pub fn post_body_limit(path: &str) -> Option<usize> {
    match path {
        "/api/v1/applications" => Some(portal::APPLICATION_BODY_LIMIT),
        "/api/v1/revocations" => Some(portal::REVOCATION_BODY_LIMIT),
        "/cabinet/api/challenge" => Some(cabinet::CHALLENGE_BODY_LIMIT),
        "/cabinet/api/login" => Some(cabinet::LOGIN_BODY_LIMIT),
        "/cabinet/api/revocations" => Some(portal::REVOCATION_BODY_LIMIT),
        "/cabinet/api/reissues" => Some(cabinet::REISSUE_BODY_LIMIT),
        "/ocsp" => Some(crate::ocsp::MAX_REQUEST_LEN),
        _ => None,
    }
}

/// The refusal of a request that declares a body its route (method and path as sent) will
/// not take: longer than the route's limit, or any body — a length above 0 or a chunked one —
/// for a route that takes none. A chunked body of unknown length on a route that takes one is
/// left to the route's reader (its limit and `[server] body_timeout_ms`). A method a POST route
/// does not take is refused as the router would refuse it: 405 with `Allow: POST`.
pub fn refused(head: &RequestHead) -> Option<ApiError> {
    let limit = body_limit(&head.method, head.uri.path());
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = match declared {
        Some(length) => length > limit as u64,
        None => limit == 0 && head.headers.contains_key(header::TRANSFER_ENCODING),
    };
    if !too_large {
        return None;
    }
    // Another method on a route that answers only POST: what the router would say (405, with
    // `Allow`), not that the body is too large for a method it never takes.
    if head.method != actix_web::http::Method::POST {
        let path = head.uri.path();
        if post_body_limit(path).is_some() {
            return Some(ApiError::MethodNotAllowed { allow: "POST" });
        }
        if let Some(allow) = super::pages::body_route_methods(path) {
            if !allow.split(", ").any(|m| m == head.method.as_str()) {
                return Some(ApiError::MethodNotAllowed { allow });
            }
        }
        // `/ocsp/` takes GET and HEAD too (without a body), as its router says.
        if path == "/ocsp/"
            && head.method != actix_web::http::Method::GET
            && head.method != actix_web::http::Method::HEAD
        {
            return Some(ApiError::MethodNotAllowed {
                allow: "GET, HEAD, POST",
            });
        }
    }
    Some(ApiError::BodyTooLarge(limit))
}

/// An answer's body that keeps the request's unread body alive until it is written: while
/// the request body lives, actix-http sees it as unread rather than abandoned, and closes the
/// connection after the answer instead of reading the rest.
pub struct KeepUnread<B> {
    body: Pin<Box<B>>,
    _request_body: Option<Rc<RefCell<Payload>>>,
}

impl<B: MessageBody> KeepUnread<B> {
    /// `body`, keeping `request_body` until it is written.
    pub fn new(body: B, request_body: Payload) -> KeepUnread<B> {
        KeepUnread {
            body: Box::pin(body),
            _request_body: Some(Rc::new(RefCell::new(request_body))),
        }
    }
}

impl<B: MessageBody> MessageBody for KeepUnread<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().body.as_mut().poll_next(cx)
    }
}

/// The route's view of a body shared with [`KeepUnread`].
struct SharedBody(Rc<RefCell<Payload>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.try_borrow_mut() {
            Ok(mut payload) => payload.poll_next_unpin(cx),
            // Only this stream borrows it, and never across a poll.
            Err(_) => Poll::Ready(None),
        }
    }
}

/// Middleware: a request with a chunked body gets its body back through a shared handle, and
/// the answer keeps the body until it is written (see the module documentation).
pub async fn keep_unread(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let kept = if req.headers().contains_key(header::TRANSFER_ENCODING) {
        let shared = Rc::new(RefCell::new(req.take_payload()));
        req.set_payload(Payload::Stream {
            payload: Box::pin(SharedBody(Rc::clone(&shared))),
        });
        Some(shared)
    } else {
        None
    };
    let response = next.call(req).await?;
    // Only a chunked request's answer is wrapped: every other answer (OCSP's among them)
    // passes through as it is, with no allocation.
    Ok(response.map_body(|_, body| match kept {
        Some(kept) => EitherBody::right(KeepUnread {
            body: Box::pin(body),
            _request_body: Some(kept),
        }),
        None => EitherBody::left(body),
    }))
}
