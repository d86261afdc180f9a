//! Bookinfo, the sample application Gantry's examples route to: four small HTTP services
//! (`productpage`, `details`, `reviews` in three versions, `ratings`) in one binary.
//!
//! ```text
//! client ──> gateway ──> productpage ──┬──> details
//!                                      └──> reviews v1 | v2 | v3 ──> ratings (v2, v3)
//! ```
//!
//! `productpage` and `reviews` copy `end-user`, `x-request-id`, `traceparent` and
//! `tracestate` onto their upstream calls, so a gateway route on `end-user` (say, `jason`
//! to reviews v2) applies to the calls made on that user's behalf.

mod details;
mod http;
mod productpage;
mod ratings;
mod reviews;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

pub use self::http::BaseUrl;
use self::http::{Upstream, serve};

/// Run one bookinfo service.
#[derive(clap::Args, Debug)]
pub struct BookinfoArgs {
    /// The service to run.
    #[arg(value_enum)]
    pub service: Service,

    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:9080")]
    pub listen: SocketAddr,

    /// Which reviews version to run: v1 shows no ratings, v2 black stars, v3 red stars.
    /// Only the reviews service uses it.
    #[arg(long, value_enum, env = "VERSION", default_value = "v1")]
    pub version: Version,

    /// Base URL of the details service (used by productpage).
    #[arg(long, env = "DETAILS_URL", default_value = "http://127.0.0.1:9081")]
    pub details_url: BaseUrl,

    /// Base URL of the reviews service (used by productpage).
    #[arg(long, env = "REVIEWS_URL", default_value = "http://127.0.0.1:9082")]
    pub reviews_url: BaseUrl,

    /// Base URL of the ratings service (used by productpage, and by reviews v2 and v3).
    #[arg(long, env = "RATINGS_URL", default_value = "http://127.0.0.1:9083")]
    pub ratings_url: BaseUrl,
}

/// The bookinfo services.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The HTML product page and JSON API; calls details, reviews and ratings.
    #[value(name = "productpage")]
    ProductPage,
    /// Bibliographic details of the book.
    Details,
    /// Reviews of the book; v2 and v3 call ratings.
    Reviews,
    /// Star ratings by reviewer.
    Ratings,
}

/// The reviews versions.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// No ratings.
    #[default]
    V1,
    /// Ratings as black stars.
    V2,
    /// Ratings as red stars.
    V3,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V3 => "v3",
        })
    }
}

/// Serves the chosen service until SIGTERM or SIGINT, then drains in-flight requests and returns.
pub async fn run(args: BookinfoArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    info!(service = ?args.service, version = %args.version, listen = %args.listen, "bookinfo serving");
    let upstream = Upstream::new(Upstream::DEFAULT_TIMEOUT);
    let shutdown = crate::signals::shutdown();
    match args.service {
        Service::ProductPage => {
            let page = productpage::ProductPage::new(args.details_url, args.reviews_url, args.ratings_url, upstream);
            serve(listener, page, shutdown).await
        }
        Service::Details => serve(listener, details::Details, shutdown).await,
        Service::Reviews => {
            serve(listener, reviews::Reviews::from_env(args.version, args.ratings_url, upstream), shutdown).await
        }
        Service::Ratings => serve(listener, ratings::RatingsService, shutdown).await,
    }
    info!(service = ?args.service, "bookinfo stopped");
    Ok(())
}
