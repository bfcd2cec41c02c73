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
        description = "Accounts, workspaces, channels, direct messages, messages, history, \
                       search and the audit log. Real-time events use the WebSocket protocol \
                       (docs/PROTOCOL.md). Every error is JSON: \
                       `{\"error\": {\"code\", \"message\"}}`. Who may call what: \
                       docs/PERMISSIONS.md."
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::me,
        routes::account::update_profile,
        routes::account::change_password,
        routes::account::sessions,
        routes::account::revoke_session,
        routes::account::profile,
        routes::workspaces::create,
        routes::workspaces::list,
        routes::workspaces::get,
        routes::workspaces::rename,
        routes::workspaces::add_member,
        routes::members::list,
        routes::members::change_role,
        routes::members::remove,
        routes::invites::create,
        routes::invites::list,
        routes::invites::accept,
        routes::audit_log::list,
        routes::workspaces::create_channel,
        routes::workspaces::list_channels,
        routes::dms::open,
        routes::channels::get,
        routes::channels::update,
        routes::channels::archive,
        routes::channels::unarchive,
        routes::channels::join,
        routes::channel_members::leave,
        routes::channel_members::list,
        routes::channel_members::add,
        routes::channel_members::remove,
        routes::channel_members::set_mute,
        routes::channel_members::mark_read,
        routes::messages::post,
        routes::messages::edit,
        routes::messages::delete,
        routes::reactions::add,
        routes::reactions::remove,
        routes::history::history,
        routes::history::events,
        routes::history::message,
        routes::history::edits,
        routes::history::replies,
        routes::search::search,
        routes::admin::disable_user,
        routes::admin::enable_user,
        crate::health,
    ),
    components(schemas(ErrorBody, ErrorDetail, views::MessageView, views::EventView)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, tokens"),
        (name = "account", description = "The caller's profile, password and sessions; other users' profiles"),
        (name = "workspaces", description = "Workspaces, members, roles, invitations, audit log"),
        (name = "channels", description = "Channels, direct messages, membership, mute, read position"),
        (name = "messages", description = "Posting, editing, deleting, reactions, threads, history, search"),
        (name = "admin", description = "Operator actions (x-chorus-admin-token)"),
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
