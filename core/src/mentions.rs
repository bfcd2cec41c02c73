//! Mentions in message text: `<@user-uuid>` names a user (the form clients insert when someone
//! picks a name from a list, so display names can change without breaking old messages).

use uuid::Uuid;

/// Most mentions kept per message; more are ignored (a message cannot notify the whole company
/// by listing everyone).
pub const MAX_MENTIONS: usize = 50;

/// The distinct users mentioned in `text`, in order of first appearance.
pub fn parse_mentions(text: &str) -> Vec<Uuid> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find('>') else { break };
        if let Ok(id) = Uuid::parse_str(&rest[..end])
            && !found.contains(&id)
        {
            found.push(id);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
        rest = &rest[end.min(rest.len())..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_mentioned_user_once_in_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let text = format!("hi <@{a}> and <@{b}>, <@{a}> again; <@nope> <@{b}");
        assert_eq!(parse_mentions(&text), vec![a, b]);
    }

    #[test]
    fn text_without_mentions_has_none() {
        assert!(parse_mentions("a < b > c <@").is_empty());
    }

    #[test]
    fn mentions_are_capped() {
        let text: String = (0..MAX_MENTIONS + 5)
            .map(|_| format!("<@{}> ", Uuid::new_v4()))
            .collect();
        assert_eq!(parse_mentions(&text).len(), MAX_MENTIONS);
    }
}
