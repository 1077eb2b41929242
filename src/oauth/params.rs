//! Form and query parameters, where a repeated parameter is an error (RFC 6749 §3.1, §3.2).

use std::collections::HashMap;

/// Parameters by name; `repeated` lists names that occurred more than once.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    pub(crate) repeated: Vec<String>,
}

impl Params {
    /// `invalid_request` naming the first parameter that occurs more than once (RFC 6749
    /// §3.1, §3.2: request and response parameters must not be included more than once).
    pub(crate) fn refuse_repeated(&self) -> Result<(), super::error::OAuthError> {
        match self.repeated.first() {
            Some(name) => Err(super::error::OAuthError::invalid_request(format!(
                "the parameter {name} is repeated"
            ))),
            None => Ok(()),
        }
    }

    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn parse(raw: &str) -> Self {
        let mut out = Self::default();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            match out.values.entry(k.into_owned()) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if !out.repeated.contains(e.key()) {
                        out.repeated.push(e.key().clone());
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(v.into_owned());
                }
            }
        }
        out
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }
}
