//! The product page: an HTML page assembled from the details and reviews services, plus a
//! small JSON API that proxies to details, reviews and ratings. A failing upstream degrades
//! its part of the page; the page itself always answers 200.

use std::fmt::Write;

use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::details::Book;
use super::http::{BaseUrl, Body, Handler, Upstream, error_json, health, html, json, propagated};
use super::reviews::{Rating, ReviewsBody};

pub(crate) const DETAILS_UNAVAILABLE: &str = "Sorry, product details are currently unavailable for this book.";
pub(crate) const REVIEWS_UNAVAILABLE: &str = "Sorry, product reviews are currently unavailable for this book.";

/// The product the page shows.
const PAGE_PRODUCT: u32 = 0;

#[derive(Serialize)]
struct Product {
    id: u32,
    title: &'static str,
    #[serde(rename = "descriptionHtml")]
    description_html: &'static str,
}

const PRODUCTS: [Product; 1] = [Product {
    id: 0,
    title: "The Comedy of Errors",
    description_html: "An early Shakespeare comedy in which two pairs of identical twins, separated at birth, \
        land in the same city on the same day, and nobody can tell who is who.",
}];

pub(crate) struct ProductPage {
    details_url: BaseUrl,
    reviews_url: BaseUrl,
    ratings_url: BaseUrl,
    upstream: Upstream,
}

impl ProductPage {
    pub(crate) fn new(details_url: BaseUrl, reviews_url: BaseUrl, ratings_url: BaseUrl, upstream: Upstream) -> Self {
        ProductPage { details_url, reviews_url, ratings_url, upstream }
    }

    async fn page(&self, headers: &HeaderMap) -> String {
        let details_path = format!("/details/{PAGE_PRODUCT}");
        let reviews_path = format!("/reviews/{PAGE_PRODUCT}");
        let (details, reviews) = tokio::join!(
            self.upstream.get_json::<Book>(&self.details_url, &details_path, headers),
            self.upstream.get_json::<ReviewsBody>(&self.reviews_url, &reviews_path, headers),
        );
        render_page(&PRODUCTS[0], details.ok().as_ref(), reviews.ok().as_ref())
    }

    /// Proxies `GET base + path` and answers with its JSON, or with an error status and message.
    async fn proxy(&self, what: &str, base: &BaseUrl, path: &str, headers: &HeaderMap) -> Response<Body> {
        match self.upstream.get_json::<Value>(base, path, headers).await {
            Ok(value) => json(StatusCode::OK, &value),
            Err(error) => error_json(error.status(), &format!("{what} service: {error}")),
        }
    }
}

pub(crate) enum Route {
    Index,
    Health,
    Page,
    Products,
    Details(u32),
    Reviews(u32),
    Ratings(u32),
}

impl Handler for ProductPage {
    const NAME: &'static str = "productpage";
    type Route = Route;

    fn route(&self, path: &str) -> Option<Route> {
        match path {
            "/" => return Some(Route::Index),
            "/health" => return Some(Route::Health),
            "/productpage" => return Some(Route::Page),
            "/api/v1/products" => return Some(Route::Products),
            _ => {}
        }
        let rest = path.strip_prefix("/api/v1/products/")?;
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let id = id.parse().ok()?;
        match tail {
            "" => Some(Route::Details(id)),
            "reviews" => Some(Route::Reviews(id)),
            "ratings" => Some(Route::Ratings(id)),
            _ => None,
        }
    }

    async fn respond(&self, route: Route, request: &Parts) -> Response<Body> {
        let headers = propagated(&request.headers);
        match route {
            Route::Index => html(StatusCode::OK, INDEX.into()),
            Route::Health => health("Product page"),
            Route::Page => html(StatusCode::OK, self.page(&headers).await),
            Route::Products => json(StatusCode::OK, &PRODUCTS),
            Route::Details(id) => self.proxy("details", &self.details_url, &format!("/details/{id}"), &headers).await,
            Route::Reviews(id) => self.proxy("reviews", &self.reviews_url, &format!("/reviews/{id}"), &headers).await,
            Route::Ratings(id) => self.proxy("ratings", &self.ratings_url, &format!("/ratings/{id}"), &headers).await,
        }
    }
}

const INDEX: &str = "<!DOCTYPE html>
<html><head><meta charset=\"utf-8\"><title>Bookinfo</title></head>
<body>
<h1>Bookinfo</h1>
<p>A sample application served through Gantry: a product page built from three small services.</p>
<ul>
<li><a href=\"/productpage\">The product page</a></li>
<li><a href=\"/api/v1/products\">The product list (JSON)</a></li>
</ul>
</body></html>
";

fn render_page(product: &Product, details: Option<&Book>, reviews: Option<&ReviewsBody>) -> String {
    let mut page = String::new();
    let title = escape(product.title);
    // Writing to a String cannot fail; the results are ignored below for that reason.
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         .error{{border:1px solid #c00;background:#fee;padding:1em}}\
         blockquote{{border-left:3px solid #ccc;margin-left:0;padding-left:1em}}</style></head>\n\
         <body>\n<h1>{title}</h1>\n<p>{}</p>\n",
        escape(product.description_html)
    );
    page.push_str("<h2>Book details</h2>\n");
    match details {
        Some(book) => render_details(&mut page, book),
        None => error_box(&mut page, DETAILS_UNAVAILABLE),
    }
    page.push_str("<h2>Book reviews</h2>\n");
    match reviews {
        Some(reviews) => render_reviews(&mut page, reviews),
        None => error_box(&mut page, REVIEWS_UNAVAILABLE),
    }
    page.push_str("</body></html>\n");
    page
}

fn render_details(page: &mut String, book: &Book) {
    page.push_str("<dl>\n");
    let rows = [
        ("Author", book.author.clone()),
        ("Year", book.year.to_string()),
        ("Type", book.kind.clone()),
        ("Pages", book.pages.to_string()),
        ("Publisher", book.publisher.clone()),
        ("Language", book.language.clone()),
        ("ISBN-10", book.isbn_10.clone()),
        ("ISBN-13", book.isbn_13.clone()),
    ];
    for (label, value) in rows {
        let _ = writeln!(page, "<dt>{label}</dt><dd>{}</dd>", escape(&value));
    }
    page.push_str("</dl>\n");
}

fn render_reviews(page: &mut String, reviews: &ReviewsBody) {
    for review in &reviews.reviews {
        let _ = write!(
            page,
            "<blockquote>\n<p>{}</p>\n<small>{}</small>\n",
            escape(&review.text),
            escape(&review.reviewer)
        );
        match &review.rating {
            None => {}
            Some(Rating::Stars { stars, color }) => {
                let filled = (*stars).min(5) as usize;
                let _ = writeln!(
                    page,
                    "<p class=\"stars\" style=\"color: {}\">{}{}</p>",
                    css_color(color),
                    "★".repeat(filled),
                    "☆".repeat(5 - filled)
                );
            }
            Some(Rating::Error { error }) => {
                let _ = writeln!(page, "<p class=\"error\">{}</p>", escape(error));
            }
        }
        page.push_str("</blockquote>\n");
    }
    let _ = writeln!(
        page,
        "<p class=\"served-by\">Reviews served by: <b>reviews-{}</b> ({})</p>",
        escape(&reviews.version),
        escape(&reviews.podname)
    );
}

fn error_box(page: &mut String, message: &str) {
    let _ = writeln!(page, "<div class=\"error\">{}</div>", escape(message));
}

/// The colour as given if it is a plain CSS colour name or hex value, else black: it goes into
/// a `style` attribute, where escaping alone would not stop other CSS.
fn css_color(color: &str) -> &str {
    if !color.is_empty() && color.chars().all(|c| c.is_ascii_alphanumeric() || c == '#') { color } else { "black" }
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
