//! The OpenAPI document, served at `GET /openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};

mod rejections;
use crate::routes;
use crate::views;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chorus REST API",
        description = "Accounts, workspaces, channels, direct messages, messages, history, \
                       search and the audit log. Real-time events use the WebSocket protocol \
                       (docs/PROTOCOL.md). Every error is JSON: \
                       `{\"error\": {\"code\", \"message\"}}`, including the rejections \
                       of malformed requests: `invalid_path` (400), `invalid_query` (400), \
                       `invalid_json` and `invalid_body` (400), `body_too_large` (413), \
                       `unsupported_media_type` (415), `not_found` for an unknown path (404) and \
                       `method_not_allowed` (405). Who may call what: docs/PERMISSIONS.md."
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
        routes::presence::set_status,
        routes::presence::clear_status,
        routes::presence::query,
        routes::focus::get,
        routes::focus::set_settings,
        routes::focus::start,
        routes::focus::end,
        routes::focus::digests,
        routes::focus::stats,
        routes::focus::team,
        routes::focus::get_policy,
        routes::focus::set_policy,
        routes::focus::remove_policy,
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
        routes::notifications::list,
        routes::notifications::set_level,
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
        routes::bots::create,
        routes::bots::list,
        routes::bots::create_token,
        routes::bots::list_tokens,
        routes::bots::revoke_token,
        routes::webhooks::create,
        routes::webhooks::list,
        routes::webhooks::delete,
        routes::webhooks::deliver,
        routes::subscriptions::create,
        routes::subscriptions::list,
        routes::subscriptions::get,
        routes::subscriptions::update,
        routes::subscriptions::delete,
        routes::subscriptions::deliveries,
        routes::commands::register_command,
        routes::commands::list_commands,
        routes::commands::delete_command,
        routes::commands::invoke,
        routes::commands::respond,
        routes::export::channel,
        routes::export::workspace,
        routes::retention::get,
        routes::retention::set,
        routes::retention::get_hold,
        routes::retention::set_hold,
        routes::admin::disable_user,
        routes::admin::enable_user,
        routes::limits::get,
        routes::limits::admin_get,
        routes::limits::set,
        routes::limits::clear,
        crate::health,
        routes::gateway::gateway,
        routes::stream::stream,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        views::MessageView,
        views::EventView,
        crate::export::ExportFormat
    )),
    modifiers(&BearerAuth, &UniqueOperationIds, &Rejections),
    tags(
        (name = "auth", description = "Registration, login, tokens"),
        (name = "account", description = "The caller's profile, password and sessions; other users' profiles"),
        (name = "workspaces", description = "Workspaces, members, roles, invitations, audit log"),
        (name = "channels", description = "Channels, direct messages, membership, mute, read position"),
        (name = "messages", description = "Posting, editing, deleting, reactions, threads, history, search"),
        (name = "presence", description = "Custom status, presence of a list of users (live changes: WebSocket `presence_subscribe`)"),
        (name = "notifications", description = "The caller's notifications and notification level per channel (live: the WebSocket `notification` and `read_state` frames)"),
        (name = "focus", description = "Focus mode: settings (schedule, priority rules, automatic reply), sessions, digests, who is in focus (live: the WebSocket `focus_digest` frame)"),
        (name = "bots", description = "Bot users, bot tokens, incoming webhooks, event subscriptions and slash commands (docs/BOTS.md)"),
        (name = "stream", description = "The caller's channel events as Server-Sent Events, resumable with `Last-Event-ID` (docs/PROTOCOL.md)"),
        (name = "export", description = "Exports of a channel or a workspace as JSON or CSV, for owners and admins, audited (docs/OPERATIONS.md)"),
        (name = "retention", description = "How long a workspace keeps history, and channels under legal hold (docs/OPERATIONS.md)"),
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

/// Documents on every operation the rejections of malformed input it can answer (`rejections.rs`).
struct Rejections;

impl Modify for Rejections {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                rejections::document(operation);
            }
        }
    }
}

/// utoipa names an operation after its handler, and handlers in different modules share names
/// (`add`, `remove`, `list`): OpenAPI requires operation ids to be unique (generated clients name
/// their methods after them). A name used more than once becomes `name_method_path_words`.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut uses: std::collections::HashMap<String, usize> = Default::default();
        for item in openapi.paths.paths.values() {
            for (_, operation) in operations(item) {
                if let Some(id) = &operation.operation_id {
                    *uses.entry(id.clone()).or_default() += 1;
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                if let Some(id) = operation.operation_id.as_mut()
                    && uses.get(id.as_str()).is_some_and(|n| *n > 1)
                {
                    *id = unique_operation_id(id, method, path);
                }
            }
        }
    }
}

/// `add`, `put`, `/v1/channels/{channel_id}/members` → `add_put_channels_members`.
fn unique_operation_id(id: &str, method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{') && *s != "v1")
        .collect();
    format!("{id}_{method}_{}", words.join("_"))
}

fn operations(
    item: &utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &utoipa::openapi::path::Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("patch", &item.patch),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_ref().map(|o| (method, o)))
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_handler_name_becomes_unique_by_method_and_path() {
        assert_eq!(
            unique_operation_id(
                "add",
                "put",
                "/v1/channels/{channel_id}/messages/{seq}/reactions/{emoji}"
            ),
            "add_put_channels_messages_reactions"
        );
    }

    #[test]
    fn the_document_has_unique_operation_ids() {
        let document = ApiDoc::openapi();
        let mut seen = std::collections::HashSet::new();
        for item in document.paths.paths.values() {
            for (_, operation) in operations(item) {
                let id = operation
                    .operation_id
                    .clone()
                    .expect("every operation has an id");
                assert!(seen.insert(id.clone()), "operation id {id} is used twice");
            }
        }
    }
}
