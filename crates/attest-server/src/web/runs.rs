//! placeholder

use std::sync::Arc;

use axum::Router;

use crate::App;

pub fn routes(r: Router<Arc<App>>, _upload_limit: usize) -> Router<Arc<App>> {
    r
}
