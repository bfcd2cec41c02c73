//! Who may do what: the workspace permission matrix (RF-01.5), as pure functions.
//!
//! Handlers find the caller's role and channel membership, then ask here. Keeping the rules in
//! one table makes them reviewable and lets `docs/PERMISSIONS.md` and the RBAC matrix test
//! (`tests/rbac.rs`) check the same thing.
//!
//! | action                                   | owner | admin | member | guest |
//! |------------------------------------------|:-----:|:-----:|:------:|:-----:|
//! | read workspace, list members and channels|  yes  |  yes  |  yes   |  yes  |
//! | rename workspace                         |  yes  |  yes  |   no   |  no   |
//! | invite / add members                     |  yes  |  yes  |   no   |  no   |
//! | remove members (see [`may_remove_member`])|  yes |  yes  |   no   |  no   |
//! | change roles (see [`may_change_role`])   |  yes  |  yes  |   no   |  no   |
//! | create channels                          |  yes  |  yes  |  yes   |  no   |
//! | join public channels on their own        |  yes  |  yes  |  yes   |  no   |
//! | open direct messages                     |  yes  |  yes  |  yes   |  yes  |
//! | manage any channel (rename, archive, …)  |  yes  |  yes  |   no   |  no   |
//! | delete others' messages (audited)        |  yes  |  yes  |   no   |  no   |
//! | read the audit log                       |  yes  |  yes  |   no   |  no   |
//! | manage bots, bot tokens and webhooks     |  yes  |  yes  |   no   |  no   |
//! | export channels and the workspace        |  yes  |  yes  |   no   |  no   |
//! | set retention policy and legal holds     |  yes  |  yes  |   no   |  no   |
//!
//! Inside a channel the caller must be a member to read, post, react or set the topic; guests may
//! read and post in the channels they were added to but not set topics or add people. A
//! channel's creator manages it like an admin while they are a member. Only the author edits a
//! message. Archived channels are read-only. Direct messages have fixed members.

use chorus_core::model::Role;

/// Workspace-wide actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    RenameWorkspace,
    InviteMembers,
    RemoveMembers,
    ChangeRoles,
    CreateChannel,
    JoinPublicChannel,
    OpenDm,
    ManageAnyChannel,
    DeleteOthersMessages,
    ReadAuditLog,
    /// Create bots, issue and revoke their tokens, create and delete incoming webhooks, register
    /// and delete slash commands.
    ManageBots,
    /// Export a channel's or the workspace's messages (audited).
    ExportData,
    /// Set the workspace's retention policy and channels' legal holds (audited).
    ManageRetention,
    /// Set the hours in which the workspace's members may focus (audited).
    ManageFocusPolicy,
}

/// Whether `role` may do `action` at all (finer rules may still refuse a particular target).
pub fn allows(role: Role, action: Action) -> bool {
    match action {
        Action::OpenDm => true,
        Action::CreateChannel | Action::JoinPublicChannel => role != Role::Guest,
        Action::RenameWorkspace
        | Action::InviteMembers
        | Action::RemoveMembers
        | Action::ChangeRoles
        | Action::ManageAnyChannel
        | Action::DeleteOthersMessages
        | Action::ReadAuditLog
        | Action::ManageBots
        | Action::ExportData
        | Action::ManageRetention
        | Action::ManageFocusPolicy => role.is_admin(),
    }
}

/// Whether `actor` may change a member's role from `from` to `to`. Owners may set any role;
/// admins may move non-owners between admin, member and guest. (The last owner's demotion is
/// refused separately: it depends on the count of owners.)
pub fn may_change_role(actor: Role, from: Role, to: Role) -> bool {
    match actor {
        Role::Owner => true,
        Role::Admin => from != Role::Owner && to != Role::Owner,
        Role::Member | Role::Guest => false,
    }
}

/// Whether `actor` may remove a member whose role is `target` (`is_self`: leaving). Anyone may
/// leave; owners remove anyone; admins remove members and guests. (The last owner's leaving is
/// refused separately.)
pub fn may_remove_member(actor: Role, target: Role, is_self: bool) -> bool {
    is_self
        || match actor {
            Role::Owner => true,
            Role::Admin => matches!(target, Role::Member | Role::Guest),
            Role::Member | Role::Guest => false,
        }
}

/// Whether `role` may manage (rename, describe, change privacy, archive, remove members of) a
/// channel; `is_creator_member`: the caller created it and is still in it.
pub fn may_manage_channel(role: Role, is_creator_member: bool) -> bool {
    allows(role, Action::ManageAnyChannel) || (is_creator_member && role != Role::Guest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Guest];

    #[test]
    fn the_matrix_in_the_module_doc_holds() {
        // (action, [owner, admin, member, guest])
        let table = [
            (Action::RenameWorkspace, [true, true, false, false]),
            (Action::InviteMembers, [true, true, false, false]),
            (Action::RemoveMembers, [true, true, false, false]),
            (Action::ChangeRoles, [true, true, false, false]),
            (Action::CreateChannel, [true, true, true, false]),
            (Action::JoinPublicChannel, [true, true, true, false]),
            (Action::OpenDm, [true, true, true, true]),
            (Action::ManageAnyChannel, [true, true, false, false]),
            (Action::DeleteOthersMessages, [true, true, false, false]),
            (Action::ReadAuditLog, [true, true, false, false]),
            (Action::ManageBots, [true, true, false, false]),
            (Action::ExportData, [true, true, false, false]),
            (Action::ManageRetention, [true, true, false, false]),
            (Action::ManageFocusPolicy, [true, true, false, false]),
        ];
        for (action, expected) in table {
            for (role, allowed) in ROLES.into_iter().zip(expected) {
                assert_eq!(allows(role, action), allowed, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn admins_cannot_touch_owners() {
        assert!(!may_change_role(Role::Admin, Role::Owner, Role::Member));
        assert!(!may_change_role(Role::Admin, Role::Member, Role::Owner));
        assert!(may_change_role(Role::Admin, Role::Guest, Role::Admin));
        assert!(may_change_role(Role::Owner, Role::Owner, Role::Admin));
        assert!(!may_remove_member(Role::Admin, Role::Owner, false));
        assert!(!may_remove_member(Role::Admin, Role::Admin, false));
        assert!(may_remove_member(Role::Admin, Role::Guest, false));
        assert!(may_remove_member(Role::Owner, Role::Admin, false));
    }

    #[test]
    fn members_and_guests_only_leave() {
        for role in [Role::Member, Role::Guest] {
            for target in ROLES {
                assert!(!may_remove_member(role, target, false));
                assert!(!may_change_role(role, target, Role::Member));
            }
            assert!(may_remove_member(role, role, true));
        }
    }

    #[test]
    fn channel_creators_manage_their_channel_unless_guests() {
        assert!(may_manage_channel(Role::Member, true));
        assert!(!may_manage_channel(Role::Member, false));
        assert!(!may_manage_channel(Role::Guest, true));
        assert!(may_manage_channel(Role::Admin, false));
    }
}
