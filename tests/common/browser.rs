//! A client that behaves like a browser for the gateway's purposes: keeps
//! cookies, does not follow redirects, sends `Accept: text/html` on page
//! loads.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

pub const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

pub struct Response {
    pub status: u16,
    pub version: reqwest::Version,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> &str {
        self.header("location").expect("no Location header")
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The value of a hidden form field on this page.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub user_agent: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Browser {
    /// Drops pooled connections, as a browser does when a server restarts.
    pub fn reconnect(&mut self) {
        self.client = client();
    }

    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.trim_end_matches('/').to_string(),
            client: client(),
            cookies: BTreeMap::new(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0".into(),
        }
    }

    /// A browser using `client` (one that trusts a test CA, say); it must
    /// not follow redirects.
    pub fn with_client(base: &str, client: reqwest::Client) -> Browser {
        Browser {
            client,
            ..Browser::new(base)
        }
    }

    /// The same browser (its cookies and user agent) talking to another
    /// address: another gateway of a fleet.
    pub fn at(&self, base: &str) -> Browser {
        Browser {
            base: base.trim_end_matches('/').to_string(),
            client: client(),
            cookies: self.cookies.clone(),
            user_agent: self.user_agent.clone(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Response {
        let mut req = req.header("User-Agent", &self.user_agent);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", self.cookie_header());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let version = resp.version();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        for sc in headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let Some((name, rest)) = sc.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or("").to_string();
            if sc.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value);
            }
        }
        Response {
            status,
            version,
            headers,
            body,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A page load: GET with `Accept: text/html`.
    pub async fn page(&mut self, path: &str) -> Response {
        let req = self.client.get(self.url(path)).header("Accept", HTML);
        self.send(req).await
    }

    /// An API call: GET with `Accept: application/json`.
    pub async fn api(&mut self, path: &str) -> Response {
        let req = self
            .client
            .get(self.url(path))
            .header("Accept", "application/json");
        self.send(req).await
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = self.client.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let req = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", HTML)
            .body(body);
        self.send(req).await
    }

    /// Loads the login page for `rd` and submits it.
    pub async fn login(&mut self, user: &str, password: &str, rd: &str) -> Response {
        let page = self
            .page(&format!("/.gatehouse/login?rd={}", urlencode(rd)))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let token = page.field("csrf_token");
        let rd_field = page.field("rd");
        self.post_form(
            "/.gatehouse/login",
            &[
                ("username", user),
                ("password", password),
                ("rd", &rd_field),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies.get("gatehouse")
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
