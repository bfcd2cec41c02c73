//! The OpenAPI document, served at `GET /openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes;
use crate::views;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chorus REST API",
        description = "Accounts, workspaces, channels and history. Real-time events use the \
                       WebSocket protocol (docs/PROTOCOL.md). Every error is JSON: \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::me,
        routes::workspaces::create,
        routes::workspaces::list,
        routes::workspaces::add_member,
        routes::workspaces::create_channel,
        routes::workspaces::list_channels,
        routes::channels::join,
        routes::channels::history,
        crate::health,
    ),
    components(schemas(ErrorBody, ErrorDetail, views::MessageView)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, tokens"),
        (name = "workspaces", description = "Workspaces and their members"),
        (name = "channels", description = "Channels and history"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
