//! Conformance checks of slash commands (`crate::commands::CommandStore`): one name per
//! workspace, listing by name, deletion; an invocation settled once — by its answer or its
//! expiry, whichever comes first — and never answered after its deadline.

use chrono::Duration;
use uuid::Uuid;

use super::{now_ms, user};
use crate::MetadataStore;
use crate::StoreError;
use crate::commands::{Invocation, InvocationState, SlashCommand};

fn command(workspace: Uuid, name: &str, bot: Uuid, by: Uuid) -> SlashCommand {
    SlashCommand {
        id: Uuid::now_v7(),
        workspace_id: workspace,
        name: name.into(),
        description: format!("does {name}"),
        bot_id: bot,
        url: None,
        secret: None,
        created_by: by,
        created_at: now_ms(),
    }
}

pub async fn slash_commands_are_unique_per_workspace_and_settled_once(store: &dyn MetadataStore) {
    let ada = user(store, "ada").await;
    let bot = user(store, "deploy-bot").await;
    let workspace = store.create_workspace("Acme", ada).await.unwrap();
    let other = store.create_workspace("Other", ada).await.unwrap();
    let commands = store.commands();

    let deploy = SlashCommand {
        url: Some("https://example.com/deploy".into()),
        secret: Some("cmdsec_test".into()),
        ..command(workspace.id, "deploy", bot, ada)
    };
    commands.create_command(&deploy).await.unwrap();
    let poll = command(workspace.id, "poll", bot, ada);
    commands.create_command(&poll).await.unwrap();
    let twice = commands
        .create_command(&command(workspace.id, "deploy", bot, ada))
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    // Another workspace may use the name.
    commands
        .create_command(&command(other.id, "deploy", bot, ada))
        .await
        .unwrap();

    assert_eq!(
        commands.command(deploy.id).await.unwrap(),
        Some(deploy.clone())
    );
    assert_eq!(
        commands
            .command_named(workspace.id, "deploy")
            .await
            .unwrap(),
        Some(deploy.clone())
    );
    assert_eq!(
        commands.command_named(workspace.id, "nope").await.unwrap(),
        None
    );
    let names: Vec<String> = commands
        .commands_of(workspace.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["deploy", "poll"]);

    // Answered in time: settled once; a second answer and a late expiry find nothing.
    let now = now_ms();
    let invocation = |token_hash: &str, expires_in: Duration| Invocation {
        id: Uuid::now_v7(),
        command_id: deploy.id,
        command: "deploy".into(),
        workspace_id: workspace.id,
        channel_id: Uuid::now_v7(),
        user_id: ada,
        bot_id: bot,
        token_hash: token_hash.into(),
        expires_at: now + expires_in,
        state: InvocationState::Pending,
        created_at: now,
    };
    let answered = invocation("hash-a", Duration::seconds(3));
    commands.create_invocation(&answered).await.unwrap();
    let got = commands.answer_invocation("hash-a", now).await.unwrap();
    assert_eq!(
        got,
        Some(Invocation {
            state: InvocationState::Answered,
            ..answered.clone()
        })
    );
    assert_eq!(
        commands.answer_invocation("hash-a", now).await.unwrap(),
        None
    );
    assert!(
        !commands
            .settle_invocation(answered.id, InvocationState::Expired)
            .await
            .unwrap()
    );

    // Expired first: the answer is refused.
    let expired = invocation("hash-b", Duration::seconds(3));
    commands.create_invocation(&expired).await.unwrap();
    assert!(
        commands
            .settle_invocation(expired.id, InvocationState::Expired)
            .await
            .unwrap()
    );
    assert_eq!(
        commands.answer_invocation("hash-b", now).await.unwrap(),
        None
    );

    // Past its deadline, a pending invocation cannot be answered either.
    let late = invocation("hash-c", Duration::milliseconds(1));
    commands.create_invocation(&late).await.unwrap();
    let after = now + Duration::seconds(1);
    assert_eq!(
        commands.answer_invocation("hash-c", after).await.unwrap(),
        None
    );
    assert_eq!(
        commands.answer_invocation("unknown", now).await.unwrap(),
        None
    );

    // Deleting a command takes its invocations with it.
    assert!(commands.delete_command(deploy.id).await.unwrap());
    assert!(!commands.delete_command(deploy.id).await.unwrap());
    assert_eq!(commands.command(deploy.id).await.unwrap(), None);
    assert_eq!(commands.commands_of(workspace.id).await.unwrap().len(), 1);
}
