//! Every way the gateway refuses a request, and the one place that picks each one's HTTP
//! status — as [`crate::http`]'s `Failure` does for `/api`. What an instance answers (its own
//! 400s naming the field) passes through as it came; these are the gateway's own answers.

use axum::http::StatusCode;
use kiln_api::oip::OipError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// A request the gateway itself reads (the version in the path, a feedback body) is wrong
    /// in `field`.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A body the gateway could not split (a binary body's header length), said as the
    /// instances' OIP checks say it.
    #[error("{0}")]
    Malformed(OipError),
    #[error("no model `{handle}` is deployed here (kiln deploy {handle} --model-version N)")]
    NotDeployed { handle: String },
    #[error("version {version} of `{handle}` is not deployed (deployed: {deployed:?})")]
    VersionNotDeployed { handle: String, version: i64, deployed: Vec<i64> },
    /// Feedback for an answer the gateway no longer remembers (or never gave).
    #[error("id: no recent answer of `{handle}` has id `{id}`")]
    UnknownAnswer { handle: String, id: String },
    /// Every slot busy and the waiting line full: come back later.
    #[error("`{handle}` is overloaded: {in_flight} requests in flight and {waiting} waiting")]
    Overloaded { handle: String, in_flight: usize, waiting: usize },
    /// Waited in line for a slot, and none came in time.
    #[error("`{handle}` is overloaded: no slot within {seconds} s")]
    NoSlot { handle: String, seconds: u64 },
    /// No instance ready (one died and its replacement is not up yet).
    #[error("no instance of `{handle}` is ready")]
    NotReady { handle: String },
    /// Instances were tried and none answered.
    #[error("no instance of `{handle}` answered")]
    NoAnswer { handle: String },
    /// An instance answered something the gateway could not use.
    #[error("the instance of `{handle}` failed: {why}")]
    Upstream { handle: String, why: String },
}

impl Refusal {
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Refusal {
        Refusal::Invalid { field: field.into(), message: message.to_string() }
    }

    /// The status that says who should act: the client (4xx: fix the request, or slow down)
    /// or the deployment (5xx).
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Invalid { .. } | Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
            Refusal::NotDeployed { .. } | Refusal::VersionNotDeployed { .. } | Refusal::UnknownAnswer { .. } => StatusCode::NOT_FOUND,
            Refusal::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::NoSlot { .. } | Refusal::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::NoAnswer { .. } | Refusal::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// OIP's error body: `{"error": "…"}`.
    pub fn body(&self) -> OipError {
        OipError::new(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status_and_says_why() {
        let h = || "iris".to_owned();
        let cases = [
            (Refusal::invalid("reward", "1.5 is not in [0, 1]"), 400, "reward: 1.5 is not in [0, 1]"),
            (
                Refusal::Malformed(OipError::at("Inference-Header-Content-Length", "`x` is not a byte count")),
                400,
                "Inference-Header-Content-Length: `x` is not a byte count",
            ),
            (Refusal::NotDeployed { handle: h() }, 404, "no model `iris` is deployed here (kiln deploy iris --model-version N)"),
            (Refusal::VersionNotDeployed { handle: h(), version: 9, deployed: vec![1, 2] }, 404, "version 9 of `iris` is not deployed (deployed: [1, 2])"),
            (Refusal::UnknownAnswer { handle: h(), id: "x".into() }, 404, "id: no recent answer of `iris` has id `x`"),
            (Refusal::Overloaded { handle: h(), in_flight: 64, waiting: 256 }, 429, "`iris` is overloaded: 64 requests in flight and 256 waiting"),
            (Refusal::NoSlot { handle: h(), seconds: 5 }, 503, "`iris` is overloaded: no slot within 5 s"),
            (Refusal::NotReady { handle: h() }, 503, "no instance of `iris` is ready"),
            (Refusal::NoAnswer { handle: h() }, 502, "no instance of `iris` answered"),
            (Refusal::Upstream { handle: h(), why: "timed out".into() }, 502, "the instance of `iris` failed: timed out"),
        ];
        for (refusal, status, says) in cases {
            assert_eq!((refusal.status().as_u16(), refusal.body().error.as_str()), (status, says), "{refusal:?}");
        }
    }
}
