//! A browser without JavaScript for the page tests: cookies by name, no
//! automatic redirects, forms posted urlencoded with their CSRF token, and
//! what a rendered form would send read back from its HTML.

use regex::Regex;

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    /// The cookies the server set, by name.
    pub cookies: std::collections::BTreeMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Page {
    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("the page has a form with a CSRF token");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    /// What a browser sends for the form whose action is `action`, without pressing a button.
    pub fn form(&self, action: &str) -> Vec<(String, String)> {
        let start = self.body.find(&format!(r#"action="{action}""#)).expect("the form is on the page");
        let end = self.body[start..].find("</form>").unwrap() + start;
        let html = &self.body[start..end];
        let attr = |tag: &str, name: &str| {
            Regex::new(&format!(r#"\s{name}="([^"]*)""#)).unwrap().captures(tag).map(|c| unescape(&c[1]))
        };
        let mut out = Vec::new();
        let tags =
            Regex::new(r#"(?s)<input[^>]*>|<textarea[^>]*>(.*?)</textarea>|<select[^>]*>(.*?)</select>"#).unwrap();
        let selected = Regex::new(r#"<option value="([^"]*)" selected>"#).unwrap();
        let first = Regex::new(r#"<option value="([^"]*)""#).unwrap();
        for m in tags.captures_iter(html) {
            let whole = m.get(0).unwrap().as_str();
            let open_tag = &whole[..whole.find('>').unwrap() + 1];
            let Some(name) = attr(open_tag, "name") else { continue };
            if whole.starts_with("<input") {
                let kind = attr(open_tag, "type").unwrap_or_default();
                if kind == "checkbox" && !open_tag.contains(" checked") {
                    continue;
                }
                if kind == "submit" {
                    continue;
                }
                out.push((name, attr(open_tag, "value").unwrap_or_default()));
            } else if whole.starts_with("<textarea") {
                // The parser drops the newline that opens a textarea's content.
                let text = unescape(m.get(1).unwrap().as_str());
                out.push((name, text.strip_prefix('\n').unwrap_or(&text).to_string()));
            } else {
                let options = m.get(2).unwrap().as_str();
                let v = selected.captures(options).or_else(|| first.captures(options)).map(|c| unescape(&c[1]));
                out.push((name, v.unwrap_or_default()));
            }
        }
        out
    }

    /// The text of the secret shown once.
    pub fn secret(&self) -> String {
        let at = self.body.find(r#"<code id="secret-value">"#).expect("the page shows a secret");
        let rest = &self.body[at + r#"<code id="secret-value">"#.len()..];
        rest[..rest.find('<').unwrap()].to_string()
    }
}

pub fn set(form: &mut [(String, String)], name: &str, value: &str) {
    let slot = form.iter_mut().find(|(k, _)| k == name).unwrap_or_else(|| panic!("the form has no input {name}"));
    slot.1 = value.to_string();
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: base.to_string(), client, cookies: Default::default() }
    }

    pub async fn finish(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let (name, value) = c.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = r.status().as_u16();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        Page { status, location, body: r.text().await.unwrap() }
    }

    /// The `Cookie` header a browser would send.
    pub fn cookie(&self) -> Option<String> {
        let pairs: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = self.cookie() {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = self.cookie() {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        self.finish(r).await
    }

    /// Signs in through the form (with its CSRF token) and follows the redirect.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let csrf = self.get("/login").await.csrf();
        let r = self
            .post("/login", &[("csrf", csrf.as_str()), ("email", email), ("password", password), ("next", "/")])
            .await;
        assert_eq!(r.status, 303, "signing in as {email}: {}", r.body);
        let to = r.location.clone();
        self.get(&to).await
    }

    /// Posts a form with this page's CSRF token added.
    pub async fn submit(&mut self, path: &str, csrf: &str, form: &[(&str, &str)]) -> Page {
        let mut with = vec![("csrf", csrf)];
        with.extend_from_slice(form);
        self.post(path, &with).await
    }

    /// Presses a button of the editor: the whole form plus the button's value.
    pub async fn press(&mut self, action: &str, form: &[(String, String)], button: &str) -> Page {
        let mut pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.push(("action", button));
        self.post(action, &pairs).await
    }
}
