//! Admin: people and their roles (add, grant, revoke, one-time passwords)
//! and API tokens (created and shown once, revoked).

use std::sync::Arc;

use askama::Template;
use attest_core::workspace::{parse_email, parse_role};
use attest_store::TokenRow;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::{Chrome, FieldErrors, FormBody, OkQuery, Viewer, WebResult, blocking, page_with, see_other, when};
use crate::guard::Caller;
use crate::problem::Problem;
use crate::{App, authn};

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/admin/people", get(people).post(add_person))
        .route("/admin/people/{email}/roles", post(grant_role))
        .route("/admin/people/{email}/roles/{role}/revoke", post(revoke_role))
        .route("/admin/people/{email}/password-reset", post(reset_password))
        .route("/admin/tokens", get(tokens).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
}

const ACCESS_LEVELS: &[&str] = &["member", "process-owner", "auditor", "admin"];

/// A secret shown once on the page that made it.
struct Secret {
    what: String,
    value: String,
}

struct PersonView {
    email: String,
    name: String,
    admin: bool,
    roles: Vec<String>,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    chrome: Chrome,
    people: Vec<PersonView>,
    secret: Option<Secret>,
    errors: FieldErrors,
    /// Which person's grant form the errors are about.
    error_person: String,
    typed: FormBody,
}

async fn people_view(
    app: &Arc<App>,
    viewer: &Viewer,
    secret: Option<Secret>,
    errors: FieldErrors,
    error_person: String,
    typed: FormBody,
    notice: Option<String>,
) -> WebResult {
    let a = app.clone();
    let people = blocking(move || Ok(a.read.users()?)).await?;
    let people = people
        .into_iter()
        .map(|u| PersonView { email: u.email, name: u.name, admin: u.admin, roles: u.roles })
        .collect();
    let chrome = Chrome::load(app, viewer, "admin").await?.with_notice(notice);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(status, &PeoplePage { chrome, people, secret, errors, error_person, typed }))
}

async fn people(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let notice = super::flash(q.ok.as_deref());
    people_view(&app, &viewer, None, FieldErrors::default(), String::new(), FormBody::default(), notice).await
}

async fn add_person(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, form: FormBody) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let mut errors = FieldErrors::default();
    let email = match parse_email(&form.text("email")) {
        Ok(e) => e,
        Err(e) => {
            errors.add("email", Problem::from(e).detail);
            String::new()
        }
    };
    let name = form.text("name");
    let admin = form.get("admin") == Some("true");
    let mut roles = Vec::new();
    for r in form.text("roles").split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match parse_role(r) {
            Ok(r) => roles.push(r),
            Err(e) => errors.add("roles", Problem::from(e).detail),
        }
    }
    if errors.is_empty() {
        let (a, by) = (app.clone(), viewer.principal.actor.clone());
        let (e, n) = (email.clone(), name.clone());
        let made = blocking(move || {
            let now = a.now();
            a.write.add_user(&by, &e, &n, admin, now)?;
            for r in &roles {
                a.write.grant_role(&by, &e, r, now)?;
            }
            let password = authn::one_time_password();
            let phc = authn::hash_password(&password).map_err(|e| Problem::internal(e.to_string()))?;
            a.read.set_password(a.auth.as_ref(), &by, &e, phc, true, now)?;
            Ok(password)
        })
        .await;
        match made {
            Ok(password) => {
                app.forget_principals();
                let secret = Secret { what: format!("One-time password for {email}"), value: password };
                let notice = Some("Person added. Give them the one-time password below; it is shown only now.".into());
                return people_view(&app, &viewer, Some(secret), errors, String::new(), FormBody::default(), notice)
                    .await;
            }
            Err(p) if p.status < 500 => errors.add(if p.status == 409 { "email" } else { "name" }, p.detail),
            Err(p) => return Err(p.into()),
        }
    }
    people_view(&app, &viewer, None, errors, String::new(), form, None).await
}

async fn grant_role(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(email): Path<String>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let role = form.text("role");
    let (a, by, e) = (app.clone(), viewer.principal.actor.clone(), email.clone());
    match blocking(move || Ok(a.write.grant_role(&by, &e, &parse_role(&role)?, a.now())?)).await {
        Ok(()) => {
            app.forget_principals();
            Ok(see_other("/admin/people?ok=role-granted"))
        }
        Err(p) if p.status < 500 => {
            let mut errors = FieldErrors::default();
            errors.add("role", p.detail);
            people_view(&app, &viewer, None, errors, email, form, None).await
        }
        Err(p) => Err(p.into()),
    }
}

async fn revoke_role(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((email, role)): Path<(String, String)>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let (a, by) = (app.clone(), viewer.principal.actor.clone());
    blocking(move || Ok(a.write.revoke_role(&by, &email, &role, a.now())?)).await?;
    app.forget_principals();
    Ok(see_other("/admin/people?ok=role-revoked"))
}

async fn reset_password(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(email): Path<String>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let (a, by, e) = (app.clone(), viewer.principal.actor.clone(), email.clone());
    let password = blocking(move || {
        let email = parse_email(&e)?;
        let password = authn::one_time_password();
        let phc = authn::hash_password(&password).map_err(|e| Problem::internal(e.to_string()))?;
        a.read.set_password(a.auth.as_ref(), &by, &email, phc, true, a.now())?;
        a.auth.delete_sessions_of(&email)?;
        Ok(password)
    })
    .await?;
    app.forget_principals();
    let secret = Secret { what: format!("New one-time password for {email}"), value: password };
    people_view(&app, &viewer, Some(secret), FieldErrors::default(), String::new(), FormBody::default(), None).await
}

// ----- tokens -----

struct TokenView {
    id: String,
    name: String,
    kind: String,
    access: String,
    roles: String,
    created: String,
    created_by: String,
    last_used: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenView>,
    secret: Option<Secret>,
    errors: FieldErrors,
    typed: FormBody,
    levels: &'static [&'static str],
}

async fn tokens_view(
    app: &Arc<App>,
    viewer: &Viewer,
    secret: Option<Secret>,
    errors: FieldErrors,
    typed: FormBody,
    notice: Option<String>,
) -> WebResult {
    let a = app.clone();
    let rows = blocking(move || Ok(a.auth.tokens()?)).await?;
    let tokens = rows
        .into_iter()
        .rev()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            kind: t.kind,
            access: t.access,
            roles: t.roles.join(", "),
            created: when(t.created_at),
            created_by: t.created_by,
            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            revoked: t.revoked_at.map(when),
        })
        .collect();
    let chrome = Chrome::load(app, viewer, "admin").await?.with_notice(notice);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(status, &TokensPage { chrome, tokens, secret, errors, typed, levels: ACCESS_LEVELS }))
}

async fn tokens(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    tokens_view(&app, &viewer, None, FieldErrors::default(), FormBody::default(), super::flash(q.ok.as_deref())).await
}

async fn create_token(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, form: FormBody) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let mut errors = FieldErrors::default();
    let name = form.text("name");
    if name.is_empty() {
        errors.add("name", "name the token after what uses it, like 'ci'");
    }
    let access = form.text("access");
    if !ACCESS_LEVELS.contains(&access.as_str()) {
        errors.add("access", "choose an access level");
    }
    let kind = if form.get("kind") == Some("agent") { "agent" } else { "token" };
    let mut roles = Vec::new();
    for r in form.text("roles").split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match parse_role(r) {
            Ok(r) => roles.push(r),
            Err(e) => errors.add("roles", Problem::from(e).detail),
        }
    }
    if errors.is_empty() {
        let by = viewer.principal.actor.clone();
        let secret = format!("attest_{}", authn::random_secret(32));
        let now = app.now();
        let row = TokenRow {
            id: uuid::Uuid::now_v7().to_string(),
            hash: authn::sha256_hex(&secret),
            name: name.clone(),
            kind: kind.to_string(),
            access: access.clone(),
            roles,
            created_by: by.to_string(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let a = app.clone();
        match blocking(move || Ok(a.read.create_token(a.auth.as_ref(), &by, row, now)?)).await {
            Ok(()) => {
                let shown = Secret { what: format!("API token “{name}” ({access})"), value: secret };
                let notice = Some("Token created. Copy it now: it is shown only once.".into());
                return tokens_view(&app, &viewer, Some(shown), errors, FormBody::default(), notice).await;
            }
            Err(p) if p.status < 500 => errors.add("name", p.detail),
            Err(p) => return Err(p.into()),
        }
    }
    tokens_view(&app, &viewer, None, errors, form, None).await
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let (a, by) = (app.clone(), viewer.principal.actor.clone());
    blocking(move || Ok(a.read.revoke_token(a.auth.as_ref(), &by, &id, a.now())?)).await?;
    app.forget_principals();
    Ok(see_other("/admin/tokens?ok=token-revoked"))
}
