//! The reviews service: two reviews of the book, in three versions. v1 shows no ratings; v2
//! and v3 ask the ratings service and colour the stars black and red respectively.

use http::request::Parts;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::Version;
use super::http::{BaseUrl, Body, Handler, Upstream, health, json, product_id, propagated};
use super::ratings::Ratings;

pub(crate) const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

/// The JSON body of `GET /reviews/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReviewsBody {
    pub id: u32,
    /// `v1`, `v2` or `v3`: which deployment answered.
    pub version: String,
    pub podname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clustername: Option<String>,
    pub reviews: Vec<Review>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Review {
    pub reviewer: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Rating {
    Stars { stars: u8, color: String },
    Error { error: String },
}

const SAMPLE_REVIEWS: [(&str, &str); 2] = [
    ("Reviewer1", "A farce that never stops to catch its breath; two sets of twins, one very long day."),
    ("Reviewer2", "The mistaken identities pile up nicely, though the ending is tidier than it has any right to be."),
];

pub(crate) struct Reviews {
    version: Version,
    podname: String,
    clustername: Option<String>,
    ratings_url: BaseUrl,
    upstream: Upstream,
}

impl Reviews {
    pub(crate) fn new(
        version: Version,
        podname: String,
        clustername: Option<String>,
        ratings_url: BaseUrl,
        upstream: Upstream,
    ) -> Self {
        Reviews { version, podname, clustername, ratings_url, upstream }
    }

    /// Pod name from `POD_NAME`, else `HOSTNAME`, else `/etc/hostname`; cluster from `CLUSTER_NAME`.
    pub(crate) fn from_env(version: Version, ratings_url: BaseUrl, upstream: Upstream) -> Self {
        let podname = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "unknown".into());
        let clustername = std::env::var("CLUSTER_NAME").ok().filter(|name| !name.is_empty());
        Reviews::new(version, podname, clustername, ratings_url, upstream)
    }

    /// The star colour this version shows, or `None` for a version without ratings.
    fn star_color(&self) -> Option<&'static str> {
        match self.version {
            Version::V1 => None,
            Version::V2 => Some("black"),
            Version::V3 => Some("red"),
        }
    }

    async fn reviews(&self, id: u32, request: &Parts) -> ReviewsBody {
        let ratings = match self.star_color() {
            None => None,
            Some(color) => {
                let path = format!("/ratings/{id}");
                let fetched =
                    self.upstream.get_json::<Ratings>(&self.ratings_url, &path, &propagated(&request.headers)).await;
                Some((color, fetched.ok()))
            }
        };
        let reviews = SAMPLE_REVIEWS
            .iter()
            .map(|&(reviewer, text)| Review {
                reviewer: reviewer.into(),
                text: text.into(),
                rating: ratings.as_ref().map(|(color, fetched)| match fetched {
                    Some(fetched) => match fetched.ratings.get(reviewer) {
                        Some(&stars) => Rating::Stars { stars, color: (*color).into() },
                        None => Rating::Error { error: format!("no rating from {reviewer}") },
                    },
                    None => Rating::Error { error: RATINGS_UNAVAILABLE.into() },
                }),
            })
            .collect();
        ReviewsBody {
            id,
            version: self.version.to_string(),
            podname: self.podname.clone(),
            clustername: self.clustername.clone(),
            reviews,
        }
    }
}

pub(crate) enum Route {
    Health,
    Reviews(u32),
}

impl Handler for Reviews {
    const NAME: &'static str = "reviews";
    type Route = Route;

    fn route(&self, path: &str) -> Option<Route> {
        match path {
            "/health" => Some(Route::Health),
            _ => product_id(path, "/reviews").map(Route::Reviews),
        }
    }

    async fn respond(&self, route: Route, request: &Parts) -> Response<Body> {
        match route {
            Route::Health => health("Reviews"),
            Route::Reviews(id) => json(StatusCode::OK, &self.reviews(id, request).await),
        }
    }
}
