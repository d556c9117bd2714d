//! The `/metrics` and `/health` HTTP endpoint. The daemon says what to render and how to judge
//! its health; this module only serves them.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::routing::get;

/// Why the endpoint stopped.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The listen address cannot be bound.
    #[error("binding {listen}")]
    Bind {
        /// The address.
        listen: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("metrics endpoint")]
    Serve(#[source] std::io::Error),
}

/// Serves `GET /metrics` (the text `render` returns) and `GET /health` (`200 ok` when `health`
/// returns `Ok`, else `503` with its problem) on `listen`, until an error. Logs the bound
/// address first (`metrics and health endpoint listening address=…`; with port 0 the
/// operating system's pick).
///
/// # Errors
/// [`EndpointError::Bind`] when `listen` cannot be bound, [`EndpointError::Serve`] when serving
/// fails.
pub async fn serve<R, H>(listen: SocketAddr, render: R, health: H) -> Result<(), EndpointError>
where
    R: Fn() -> String + Clone + Send + Sync + 'static,
    H: Fn() -> Result<(), String> + Clone + Send + Sync + 'static,
{
    let app = axum::Router::new().route("/metrics", get(move || std::future::ready(render()))).route(
        "/health",
        get(move || {
            std::future::ready(match health() {
                Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
                Err(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
            })
        }),
    );
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| EndpointError::Bind { listen, source })?;
    // Announced so that a supervisor that asked for port 0 learns which port it got.
    let address = listener.local_addr().map_or_else(|_| listen.to_string(), |bound| bound.to_string());
    tracing::info!(%address, "metrics and health endpoint listening");
    axum::serve(listener, app).await.map_err(EndpointError::Serve)
}
