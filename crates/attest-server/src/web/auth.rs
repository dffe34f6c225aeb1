//! Sign in, sign out, change password.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::{Chrome, FieldErrors, FormBody, Viewer, WebResult, page, page_with, see_other};
use crate::access::Credential;
use crate::api::{SignIn, sign_in};
use crate::guard::Caller;
use crate::{App, authn};

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/account/password", get(password_form).post(change_password))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    email: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    ok: Option<String>,
}

async fn login_form(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = super::local_path(q.next.as_deref());
    let chrome = Chrome::anonymous().with_notice(super::flash(q.ok.as_deref()));
    login_page(&app, &headers, StatusCode::OK, chrome, next, String::new(), FieldErrors::default())
}

/// The sign-in form with its CSRF token in a hidden field and in a cookie.
/// A token the browser already holds is kept, so two open sign-in tabs both work.
fn login_page(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    mut chrome: Chrome,
    next: String,
    email: String,
    errors: FieldErrors,
) -> Response {
    let now = app.now();
    let token = authn::current_login_token(app, headers, now).unwrap_or_else(|| authn::new_login_token(app, now));
    chrome.csrf = token.clone();
    let mut res = page_with(status, &LoginPage { chrome, next, email, errors });
    if let Ok(v) = HeaderValue::from_str(&authn::login_csrf_cookie(app, headers, &token)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

async fn login(State(app): State<Arc<App>>, headers: HeaderMap, form: FormBody) -> WebResult {
    let email = form.text("email");
    let password = form.get("password").unwrap_or("").to_string();
    let next = super::local_path(form.get("next"));
    let mut errors = FieldErrors::default();
    if !authn::login_csrf_ok(&app, &headers, form.get("csrf").unwrap_or(""), app.now()) {
        // Checked before the password, so a forged post learns nothing and counts no failure.
        errors.add("", "this sign-in form has expired or was sent from another site; sign in again");
        let res = login_page(&app, &headers, StatusCode::FORBIDDEN, Chrome::anonymous(), next, email, errors);
        return Ok(res);
    }
    if email.is_empty() {
        errors.add("email", "enter your email address");
    }
    if password.is_empty() {
        errors.add("password", "enter your password");
    }
    if errors.is_empty() {
        match sign_in(&app, &email, password).await? {
            SignIn::Session { id, must_change, .. } => {
                let to = if must_change { "/account/password".to_string() } else { next };
                let mut res = see_other(&to);
                for cookie in [authn::session_cookie(&app, &headers, &id), authn::clear_login_csrf_cookie()] {
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        res.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                return Ok(res);
            }
            SignIn::Wait(wait) => errors.add(
                "",
                format!("too many failed sign-ins for this email; try again in {} minutes", wait.div_ceil(60)),
            ),
            SignIn::Wrong => errors.add("password", "the email or the password is wrong"),
        }
    }
    let status = if errors.form().is_some() { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(login_page(&app, &headers, status, Chrome::anonymous(), next, email, errors))
}

async fn logout(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    if let Credential::Session { id_hash, .. } = viewer.principal.credential {
        let a = app.clone();
        super::blocking(move || Ok(a.auth.delete_session(&id_hash)?)).await?;
        app.forget_principals();
    }
    let mut res = see_other("/login?ok=signed-out");
    if let Ok(v) = HeaderValue::from_str(&authn::clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    errors: FieldErrors,
    min_chars: usize,
}

async fn password_form(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let chrome = Chrome::load(&app, &viewer, "account").await?;
    Ok(page(&PasswordPage { chrome, errors: FieldErrors::default(), min_chars: authn::MIN_PASSWORD_CHARS }))
}

async fn change_password(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let current = form.get("current_password").unwrap_or("").to_string();
    let new = form.get("new_password").unwrap_or("").to_string();
    let confirm = form.get("confirm_password").unwrap_or("");
    let mut errors = FieldErrors::default();
    if current.is_empty() {
        errors.add("current_password", "enter your current password");
    }
    if let Err(p) = authn::check_new_password(&new) {
        errors.add("new_password", p.detail);
    } else if new == current {
        errors.add("new_password", "the new password must differ from the current one");
    }
    if errors.is_empty() && confirm != new {
        errors.add("confirm_password", "the two new passwords differ");
    }
    if errors.is_empty() {
        match crate::api::replace_password(&app, &viewer.principal, current, new).await {
            Ok((id, _csrf)) => {
                let mut res = see_other("/?ok=password");
                if let Ok(v) = HeaderValue::from_str(&authn::session_cookie(&app, &headers, &id)) {
                    res.headers_mut().insert(header::SET_COOKIE, v);
                }
                return Ok(res);
            }
            Err(p) if p.status == 403 => errors.add("current_password", p.detail),
            Err(p) if p.status == 400 => errors.add("new_password", p.detail),
            Err(p) => return Err(p.into()),
        }
    }
    let chrome = Chrome::load(&app, &viewer, "account").await?;
    Ok(page_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &PasswordPage { chrome, errors, min_chars: authn::MIN_PASSWORD_CHARS },
    ))
}
