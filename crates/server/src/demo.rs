//! `--demo`: a demo account with a month of realistic usage. (Being filled in.)

use crate::app::App;
use crate::error::ApiError;
use crate::secret::Secret;

pub async fn create(app: &App) -> Result<Secret, ApiError> {
    let _ = app;
    Err(ApiError::Internal("demo not built yet".into()))
}
