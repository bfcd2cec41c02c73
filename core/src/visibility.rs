//! Whose presence a user may see: their own, and that of anyone they share a workspace with.
//!
//! Workspaces are isolated realms, so presence never crosses them. The gateway (presence
//! subscriptions) and the API (bulk presence query) ask the same question here; the decision is
//! the pure [`visible_among`], the lookups are [`sharing_a_workspace`].

use std::collections::HashSet;

use uuid::Uuid;

use crate::{MetadataStore, StoreError};

/// Of `candidates` (each with the workspaces they belong to), those `viewer` may see, in the order
/// given, each once.
pub fn visible_among(
    viewer: Uuid,
    viewer_workspaces: &HashSet<Uuid>,
    candidates: impl IntoIterator<Item = (Uuid, Vec<Uuid>)>,
) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|(user, workspaces)| {
            *user == viewer || workspaces.iter().any(|w| viewer_workspaces.contains(w))
        })
        .filter_map(|(user, _)| seen.insert(user).then_some(user))
        .collect()
}

/// Of `candidates`, the users `viewer` shares a workspace with (and the viewer themself), in the
/// order given, without repeats. One lookup per distinct candidate: callers bound the list.
pub async fn sharing_a_workspace(
    store: &dyn MetadataStore,
    viewer: Uuid,
    candidates: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    let mine: HashSet<Uuid> = store
        .workspaces_of(viewer)
        .await?
        .into_iter()
        .map(|(workspace, _)| workspace.id)
        .collect();
    let mut looked_up = Vec::with_capacity(candidates.len());
    let mut asked = HashSet::new();
    for &user in candidates {
        if !asked.insert(user) {
            continue;
        }
        let theirs = if user == viewer {
            Vec::new()
        } else {
            store
                .workspaces_of(user)
                .await?
                .into_iter()
                .map(|(workspace, _)| workspace.id)
                .collect()
        };
        looked_up.push((user, theirs));
    }
    Ok(visible_among(viewer, &mine, looked_up))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workspace_mates_and_oneself_are_visible_each_once() {
        let (me, mate, stranger) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let (ours, theirs) = (Uuid::from_u128(10), Uuid::from_u128(11));
        let mine = HashSet::from([ours]);
        let visible = visible_among(
            me,
            &mine,
            [
                (stranger, vec![theirs]),
                (mate, vec![theirs, ours]),
                (me, vec![]),
                (mate, vec![ours]),
            ],
        );
        assert_eq!(visible, vec![mate, me]);
    }
}
