//! What a bot token may call over REST: each route needs one scope, and routes that are about a
//! person's account or a workspace's administration are closed to bots whatever their scopes.
//! Decided here from the route template alone (pure, unit-tested), so one table — mirrored in
//! docs/PERMISSIONS.md — covers every route, and a new route is closed to bots until listed.
//!
//! Scopes only take rights away: the handler still applies the permission matrix to the bot as
//! the workspace member it is.

use axum::http::Method;
use chorus_core::bots::Scope;

/// The verdict on a bot calling a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BotRoute {
    /// Any bot token may call it.
    Open,
    /// The token needs this scope.
    Needs(Scope),
    /// Closed to bots.
    Closed,
}

/// The verdict for `method` on the route `template` (axum's matched path).
pub fn bot_route(method: &Method, template: &str) -> BotRoute {
    use BotRoute::{Closed, Needs, Open};
    use Scope::*;
    let get = method == Method::GET;
    match template {
        "/v1/users/me" if get => Open,
        "/v1/workspaces" if get => Open,
        "/v1/workspaces/{workspace_id}" if get => Open,
        "/v1/users/{user_id}" | "/v1/workspaces/{workspace_id}/members" if get => Needs(UsersRead),
        "/v1/presence/query" => Needs(UsersRead),
        "/v1/workspaces/{workspace_id}/channels" if get => Needs(ChannelsRead),
        "/v1/workspaces/{workspace_id}/channels" => Needs(ChannelsManage),
        "/v1/channels/{channel_id}" if get => Needs(ChannelsRead),
        "/v1/channels/{channel_id}"
        | "/v1/channels/{channel_id}/archive"
        | "/v1/channels/{channel_id}/unarchive"
        | "/v1/channels/{channel_id}/members/{user_id}" => Needs(ChannelsManage),
        "/v1/channels/{channel_id}/members" if get => Needs(ChannelsRead),
        "/v1/channels/{channel_id}/members" => Needs(ChannelsManage),
        "/v1/channels/{channel_id}/leave"
        | "/v1/channels/{channel_id}/mute"
        | "/v1/channels/{channel_id}/read" => Needs(ChannelsRead),
        "/v1/channels/{channel_id}/messages" | "/v1/channels/{channel_id}/messages/{seq}"
            if get =>
        {
            Needs(ChannelsRead)
        }
        "/v1/channels/{channel_id}/events"
        | "/v1/channels/{channel_id}/messages/{seq}/edits"
        | "/v1/channels/{channel_id}/messages/{seq}/replies" => Needs(ChannelsRead),
        "/v1/channels/{channel_id}/messages" | "/v1/channels/{channel_id}/messages/{seq}" => {
            Needs(MessagesWrite)
        }
        "/v1/channels/{channel_id}/messages/{seq}/reactions/{emoji}" => Needs(ReactionsWrite),
        "/v1/stream" if get => Needs(ChannelsRead),
        _ => Closed,
    }
}

/// The channel a `/v1/channels/{channel_id}…` path names, as text: a bot reaches only channels
/// it is a member of, so the extractor looks its membership up.
pub fn channel_segment<'a>(template: &str, path: &'a str) -> Option<&'a str> {
    if !template.starts_with("/v1/channels/{channel_id}") {
        return None;
    }
    path.strip_prefix("/v1/channels/")?.split('/').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_route_needs_its_scope() {
        let cases = [
            (
                Method::GET,
                "/v1/channels/{channel_id}/messages",
                BotRoute::Needs(Scope::ChannelsRead),
            ),
            (
                Method::POST,
                "/v1/channels/{channel_id}/messages",
                BotRoute::Needs(Scope::MessagesWrite),
            ),
            (
                Method::PATCH,
                "/v1/channels/{channel_id}/messages/{seq}",
                BotRoute::Needs(Scope::MessagesWrite),
            ),
            (
                Method::DELETE,
                "/v1/channels/{channel_id}/messages/{seq}",
                BotRoute::Needs(Scope::MessagesWrite),
            ),
            (
                Method::PUT,
                "/v1/channels/{channel_id}/messages/{seq}/reactions/{emoji}",
                BotRoute::Needs(Scope::ReactionsWrite),
            ),
            (
                Method::POST,
                "/v1/workspaces/{workspace_id}/channels",
                BotRoute::Needs(Scope::ChannelsManage),
            ),
            (
                Method::POST,
                "/v1/channels/{channel_id}/members",
                BotRoute::Needs(Scope::ChannelsManage),
            ),
            (
                Method::GET,
                "/v1/workspaces/{workspace_id}/members",
                BotRoute::Needs(Scope::UsersRead),
            ),
            (Method::GET, "/v1/users/me", BotRoute::Open),
            (
                Method::GET,
                "/v1/stream",
                BotRoute::Needs(Scope::ChannelsRead),
            ),
        ];
        for (method, template, expected) in cases {
            assert_eq!(
                bot_route(&method, template),
                expected,
                "{method} {template}"
            );
        }
    }

    #[test]
    fn accounts_administration_and_bot_management_are_closed_to_bots() {
        for (method, template) in [
            (Method::POST, "/v1/auth/logout"),
            (Method::PATCH, "/v1/users/me"),
            (Method::POST, "/v1/users/me/password"),
            (Method::GET, "/v1/users/me/sessions"),
            (Method::PUT, "/v1/users/me/status"),
            (Method::PATCH, "/v1/workspaces/{workspace_id}"),
            (Method::POST, "/v1/workspaces/{workspace_id}/members"),
            (Method::POST, "/v1/workspaces/{workspace_id}/invites"),
            (Method::GET, "/v1/workspaces/{workspace_id}/audit"),
            (Method::GET, "/v1/workspaces/{workspace_id}/search"),
            (Method::POST, "/v1/workspaces/{workspace_id}/dms"),
            (Method::POST, "/v1/workspaces/{workspace_id}/bots"),
            (Method::POST, "/v1/bots/{bot_id}/tokens"),
            (Method::POST, "/v1/channels/{channel_id}/join"),
            (Method::POST, "/v1/channels/{channel_id}/webhooks"),
        ] {
            assert_eq!(
                bot_route(&method, template),
                BotRoute::Closed,
                "{method} {template}"
            );
        }
    }

    #[test]
    fn the_channel_of_a_channel_route_is_found_in_its_path() {
        assert_eq!(
            channel_segment(
                "/v1/channels/{channel_id}/messages",
                "/v1/channels/abc/messages"
            ),
            Some("abc")
        );
        assert_eq!(
            channel_segment("/v1/channels/{channel_id}", "/v1/channels/abc"),
            Some("abc")
        );
        assert_eq!(
            channel_segment("/v1/workspaces/{workspace_id}", "/v1/workspaces/abc"),
            None
        );
    }
}
