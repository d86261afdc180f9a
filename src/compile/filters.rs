//! HTTPRoute filters to table filters. BackendRef filters have their own (identically shaped)
//! types in the crate; they are converted through serde into the rule filter type, so that one
//! converter serves both.

use gateway_api::httproutes::{
    HttpRouteRulesBackendRefsFilters, HttpRouteRulesFilters, HttpRouteRulesFiltersRequestHeaderModifier,
    HttpRouteRulesFiltersRequestMirror, HttpRouteRulesFiltersRequestRedirect,
    HttpRouteRulesFiltersRequestRedirectPathType, HttpRouteRulesFiltersRequestRedirectScheme,
    HttpRouteRulesFiltersType as Type, HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePathType,
};
use http::{HeaderName, HeaderValue, StatusCode};

use super::backends::{BackendRef, RefError, Resolver};
use crate::table::{Filter, HeaderModifier, Mirror, PathModifier, Redirect, Rewrite};

/// Why a filter was not converted.
#[derive(Debug)]
pub(super) enum FilterError {
    /// The filter is invalid or unsupported: the rule is dropped (reason UnsupportedValue).
    Invalid(String),
    /// A mirror's backendRef did not resolve: the filter is left out (ResolvedRefs False).
    Ref(RefError),
}

/// What a filter may depend on besides itself.
pub(super) struct FilterContext<'r, 'a> {
    pub resolver: &'r mut Resolver<'a>,
    pub route_namespace: &'r str,
    /// Whether every match of the rule is a PathPrefix (ReplacePrefixMatch needs one).
    pub all_prefix_matches: bool,
}

/// Reads a backendRef filter as the rule filter type it mirrors field for field.
pub(super) fn from_backend_filter(filter: &HttpRouteRulesBackendRefsFilters) -> Result<HttpRouteRulesFilters, String> {
    serde_json::to_value(filter)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("backendRef filter could not be read: {e}"))
}

/// Checks the filters of one rule together: RequestRedirect and URLRewrite exclude each other.
pub(super) fn check_combination(filters: &[HttpRouteRulesFilters]) -> Result<(), String> {
    let has = |t: Type| filters.iter().any(|f| f.r#type == t);
    if has(Type::RequestRedirect) && has(Type::UrlRewrite) {
        return Err("filters: RequestRedirect and URLRewrite cannot be used in the same rule".into());
    }
    Ok(())
}

pub(super) fn convert(filter: &HttpRouteRulesFilters, cx: &mut FilterContext<'_, '_>) -> Result<Filter, FilterError> {
    let missing = |field: &str| FilterError::Invalid(format!("filter type {:?} needs field {field}", filter.r#type));
    match filter.r#type {
        Type::RequestHeaderModifier => {
            let m = filter.request_header_modifier.as_ref().ok_or_else(|| missing("requestHeaderModifier"))?;
            Ok(Filter::RequestHeaders(header_modifier(m).map_err(FilterError::Invalid)?))
        }
        Type::ResponseHeaderModifier => {
            // The two modifiers have one shape; read the response one as the request one.
            let m = filter.response_header_modifier.as_ref().ok_or_else(|| missing("responseHeaderModifier"))?;
            let m: HttpRouteRulesFiltersRequestHeaderModifier = serde_json::to_value(m)
                .and_then(serde_json::from_value)
                .map_err(|e| FilterError::Invalid(e.to_string()))?;
            Ok(Filter::ResponseHeaders(header_modifier(&m).map_err(FilterError::Invalid)?))
        }
        Type::RequestRedirect => {
            let r = filter.request_redirect.as_ref().ok_or_else(|| missing("requestRedirect"))?;
            Ok(Filter::Redirect(redirect(r, cx.all_prefix_matches).map_err(FilterError::Invalid)?))
        }
        Type::UrlRewrite => {
            let r = filter.url_rewrite.as_ref().ok_or_else(|| missing("urlRewrite"))?;
            Ok(Filter::Rewrite(rewrite(r, cx.all_prefix_matches).map_err(FilterError::Invalid)?))
        }
        Type::RequestMirror => {
            let m = filter.request_mirror.as_ref().ok_or_else(|| missing("requestMirror"))?;
            mirror(m, cx)
        }
        Type::ExtensionRef | Type::Cors => {
            Err(FilterError::Invalid(format!("filter type {:?} is not supported by Gantry", filter.r#type)))
        }
    }
}

fn header_modifier(m: &HttpRouteRulesFiltersRequestHeaderModifier) -> Result<HeaderModifier, String> {
    let pair = |name: &str, value: &str| -> Result<(HeaderName, HeaderValue), String> {
        Ok((
            header_name(name)?,
            HeaderValue::from_str(value).map_err(|_| format!("invalid header value {value:?} for {name:?}"))?,
        ))
    };
    Ok(HeaderModifier {
        set: m.set.iter().flatten().map(|h| pair(&h.name, &h.value)).collect::<Result<_, _>>()?,
        add: m.add.iter().flatten().map(|h| pair(&h.name, &h.value)).collect::<Result<_, _>>()?,
        remove: m.remove.iter().flatten().map(|n| header_name(n)).collect::<Result<_, _>>()?,
    })
}

/// Header names are case-insensitive: stored lower case.
pub(super) fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

fn path_modifier(
    kind: PathKind,
    full: Option<&String>,
    prefix: Option<&String>,
    all_prefix_matches: bool,
) -> Result<PathModifier, String> {
    match kind {
        PathKind::Full => Ok(PathModifier::ReplaceFullPath(
            full.ok_or("path.replaceFullPath is required for type ReplaceFullPath")?.clone(),
        )),
        PathKind::Prefix => {
            if !all_prefix_matches {
                return Err(
                    "path type ReplacePrefixMatch needs every match of the rule to be a PathPrefix match".into()
                );
            }
            let value = prefix.ok_or("path.replacePrefixMatch is required for type ReplacePrefixMatch")?;
            Ok(PathModifier::ReplacePrefixMatch(value.clone()))
        }
    }
}

enum PathKind {
    Full,
    Prefix,
}

fn redirect(r: &HttpRouteRulesFiltersRequestRedirect, all_prefix_matches: bool) -> Result<Redirect, String> {
    let status = match r.status_code.unwrap_or(302) {
        code @ (301 | 302 | 303 | 307 | 308) => StatusCode::from_u16(code as u16).map_err(|e| e.to_string())?,
        other => return Err(format!("requestRedirect.statusCode {other} is not one of 301, 302, 303, 307, 308")),
    };
    let port = r
        .port
        .map(|p| {
            u16::try_from(p).ok().filter(|p| *p > 0).ok_or(format!("requestRedirect.port {p} is not a valid port"))
        })
        .transpose()?;
    let path = r
        .path
        .as_ref()
        .map(|p| {
            let kind = match p.r#type {
                HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath => PathKind::Full,
                HttpRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch => PathKind::Prefix,
            };
            path_modifier(kind, p.replace_full_path.as_ref(), p.replace_prefix_match.as_ref(), all_prefix_matches)
        })
        .transpose()?;
    let scheme = r.scheme.as_ref().map(|s| match s {
        HttpRouteRulesFiltersRequestRedirectScheme::Http => "http".to_string(),
        HttpRouteRulesFiltersRequestRedirectScheme::Https => "https".to_string(),
    });
    Ok(Redirect { scheme, hostname: r.hostname.clone(), port, path, status })
}

fn rewrite(r: &HttpRouteRulesFiltersUrlRewrite, all_prefix_matches: bool) -> Result<Rewrite, String> {
    let path = r
        .path
        .as_ref()
        .map(|p| {
            let kind = match p.r#type {
                HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath => PathKind::Full,
                HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch => PathKind::Prefix,
            };
            path_modifier(kind, p.replace_full_path.as_ref(), p.replace_prefix_match.as_ref(), all_prefix_matches)
        })
        .transpose()?;
    Ok(Rewrite { hostname: r.hostname.clone(), path })
}

fn mirror(m: &HttpRouteRulesFiltersRequestMirror, cx: &mut FilterContext<'_, '_>) -> Result<Filter, FilterError> {
    let (numerator, denominator) = match (&m.fraction, m.percent) {
        (Some(f), _) => (f.numerator, f.denominator.unwrap_or(100)),
        (None, Some(p)) => (p, 100),
        (None, None) => (100, 100),
    };
    if denominator <= 0 || numerator < 0 || numerator > denominator {
        return Err(FilterError::Invalid(format!(
            "requestMirror share {numerator}/{denominator} is not between 0 and 1"
        )));
    }
    let backend =
        cx.resolver.resolve(cx.route_namespace, BackendRef::from(&m.backend_ref)).map_err(FilterError::Ref)?;
    Ok(Filter::Mirror(Mirror { backend, numerator: numerator as u32, denominator: denominator as u32 }))
}
