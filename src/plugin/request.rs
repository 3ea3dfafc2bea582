//! `InboundRequest`: a webhook as received, and the typestate that proves its secret was checked.
//!
//! Only [`InboundRequest::verify`] turns an `InboundRequest<Unverified>` into an
//! `InboundRequest<Verified>`, and only a verified request can be normalised
//! ([`crate::plugin::Vendor::normalize`]), so no code path can skip authentication.

use std::marker::PhantomData;

use axum::http::Method;
use bytes::Bytes;

use crate::secret::Secret;

/// Marker: the secret has not been checked yet.
#[derive(Debug)]
pub struct Unverified;
/// Marker: the vendor's secret matched (or the vendor has none).
#[derive(Debug)]
pub struct Verified;

/// The parts of a request a vendor plugin reads.
#[derive(Debug)]
pub struct InboundRequest<State = Unverified> {
    method: Method,
    content_type: Option<String>,
    query: Vec<(String, String)>,
    body: Bytes,
    state: PhantomData<State>,
}

/// Why a request's secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("this endpoint requires a secret: post to /hooks/<vendor>/<secret> or add ?token=<secret>")]
    Missing,
    #[error("the secret does not match")]
    Mismatch,
}

impl InboundRequest<Unverified> {
    /// Wraps a received request.
    pub fn new(method: Method, content_type: Option<String>, query: Vec<(String, String)>, body: Bytes) -> Self {
        Self { method, content_type, query, body, state: PhantomData }
    }

    /// Checks the presented secret against the vendor's, in constant time.
    ///
    /// # Errors
    /// The vendor has a secret and none, or another, was presented.
    pub fn verify(
        self,
        expected: Option<&Secret>,
        presented: Option<&str>,
    ) -> Result<InboundRequest<Verified>, VerifyError> {
        match (expected, presented) {
            (None, _) => {}
            (Some(_), None) => return Err(VerifyError::Missing),
            (Some(secret), Some(presented)) if secret.matches(presented) => {}
            (Some(_), Some(_)) => return Err(VerifyError::Mismatch),
        }
        Ok(InboundRequest {
            method: self.method,
            content_type: self.content_type,
            query: self.query,
            body: self.body,
            state: PhantomData,
        })
    }
}

impl InboundRequest<Verified> {
    /// A kept request the operator asks to process again ([`crate::ingest::reprocess`]). Its secret was
    /// masked when it was kept, so it cannot be checked again: the operator vouches for it, and
    /// a request refused for its credentials or its sender is never processed again.
    pub fn vouched_for_by_operator(
        method: Method,
        content_type: Option<String>,
        query: Vec<(String, String)>,
        body: Bytes,
    ) -> Self {
        Self { method, content_type, query, body, state: PhantomData }
    }
}

impl<State> InboundRequest<State> {
    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Decoded query parameters, in order.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> InboundRequest {
        InboundRequest::new(Method::POST, None, Vec::new(), Bytes::new())
    }

    #[test]
    fn verification_requires_the_exact_secret_when_one_is_set() {
        let secret = Secret::new("abc");
        assert!(request().verify(None, None).is_ok());
        assert!(request().verify(None, Some("anything")).is_ok());
        assert!(request().verify(Some(&secret), Some("abc")).is_ok());
        assert_eq!(request().verify(Some(&secret), None).unwrap_err(), VerifyError::Missing);
        assert_eq!(request().verify(Some(&secret), Some("abd")).unwrap_err(), VerifyError::Mismatch);
    }
}
