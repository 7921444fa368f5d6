//! URLs in settings, which may carry a secret: [`UrlSetting`].

use serde::Deserialize;

/// A URL from settings, which may carry a secret (a password in `user:pw@`, an API key in `?api_key=…`): used as
/// it is ([`UrlSetting::as_str`]), printed (`Debug`, `--check`) without its user name, password, query and
/// fragment.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct UrlSetting(String);

impl UrlSetting {
    /// The URL, secrets and all: to call, never to print.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for UrlSetting {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for UrlSetting {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl From<String> for UrlSetting {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl PartialEq<&str> for UrlSetting {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Debug for UrlSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("\"\"");
        }
        match reqwest::Url::parse(&self.0) {
            Ok(url) => write!(f, "{:?}", crate::downstream::client::redacted(&url).as_str()),
            Err(_) => f.write_str("(not a URL)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::load;

    #[test]
    fn the_secrets_of_an_apis_url_never_print() {
        let s = load(&[
            ("COURIER__APIS__HOOK__BASE_URL", "https://svc:pw-S3CR3T@hooks.example.com/in?token=T0KEN-1#frag"),
            ("COURIER__APIS__HOOK__AUTH", "oauth2"),
            ("COURIER__APIS__HOOK__OAUTH2_TOKEN_URL", "https://id.example.com/token?client_key=T0KEN-2"),
            ("COURIER__APIS__HOOK__OAUTH2_CLIENT_ID", "courier"),
            ("COURIER__APIS__HOOK__OAUTH2_CLIENT_SECRET", "client-secret"),
        ])
        .expect("valid");
        let printed = format!("{s:#?}");
        for secret in ["pw-S3CR3T", "T0KEN-1", "T0KEN-2", "svc:", "frag"] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
        assert!(
            printed.contains("\"https://hooks.example.com/in\"") && printed.contains("https://id.example.com/token")
        );
        let hook = s.apis.get("hook").expect("hook");
        assert_eq!(
            hook.base_url.as_str(),
            "https://svc:pw-S3CR3T@hooks.example.com/in?token=T0KEN-1#frag",
            "used whole"
        );
        let error =
            load(&[("COURIER__APIS__HOOK__BASE_URL", "T0KEN-3 is not a URL")]).expect_err("not a URL").to_string();
        assert!(error.contains("apis.hook.base_url") && !error.contains("T0KEN-3"), "{error}");
    }
}
