//! The details service: bibliographic data for the one book in the catalogue.

use http::request::Parts;
use http::{Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::http::{Body, Handler, health, json, product_id};

/// The JSON body of `GET /details/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Book {
    pub id: u32,
    pub author: String,
    pub year: u16,
    #[serde(rename = "type")]
    pub kind: String,
    pub pages: u32,
    pub publisher: String,
    pub language: String,
    #[serde(rename = "ISBN-10")]
    pub isbn_10: String,
    #[serde(rename = "ISBN-13")]
    pub isbn_13: String,
}

impl Book {
    /// Every id names the same book; the sample has a catalogue of one.
    fn sample(id: u32) -> Self {
        Book {
            id,
            author: "William Shakespeare".into(),
            year: 1595,
            kind: "paperback".into(),
            pages: 208,
            publisher: "Gantry Sample Editions".into(),
            language: "English".into(),
            isbn_10: "0000000001".into(),
            isbn_13: "000-0000000001".into(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Details;

pub(crate) enum Route {
    Health,
    Book(u32),
}

impl Handler for Details {
    const NAME: &'static str = "details";
    type Route = Route;

    fn route(&self, path: &str) -> Option<Route> {
        match path {
            "/health" => Some(Route::Health),
            _ => product_id(path, "/details").map(Route::Book),
        }
    }

    async fn respond(&self, route: Route, _request: &Parts) -> Response<Body> {
        match route {
            Route::Health => health("Details"),
            Route::Book(id) => json(StatusCode::OK, &Book::sample(id)),
        }
    }
}
