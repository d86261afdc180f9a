//! The ratings service: star ratings given by each reviewer.

use std::collections::BTreeMap;

use http::request::Parts;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::http::{Body, Handler, health, json, product_id};

/// The JSON body of `GET /ratings/{id}`: stars (1-5) by reviewer name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ratings {
    pub id: u32,
    pub ratings: BTreeMap<String, u8>,
}

impl Ratings {
    fn sample(id: u32) -> Self {
        Ratings { id, ratings: BTreeMap::from([("Reviewer1".into(), 5), ("Reviewer2".into(), 4)]) }
    }
}

#[derive(Debug, Default)]
pub(crate) struct RatingsService;

pub(crate) enum Route {
    Health,
    Ratings(u32),
}

impl Handler for RatingsService {
    const NAME: &'static str = "ratings";
    type Route = Route;

    fn route(&self, path: &str) -> Option<Route> {
        match path {
            "/health" => Some(Route::Health),
            _ => product_id(path, "/ratings").map(Route::Ratings),
        }
    }

    async fn respond(&self, route: Route, _request: &Parts) -> Response<Body> {
        match route {
            Route::Health => health("Ratings"),
            Route::Ratings(id) => json(StatusCode::OK, &Ratings::sample(id)),
        }
    }
}
