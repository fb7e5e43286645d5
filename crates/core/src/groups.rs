//! Group rules: who may create, change, leave and dismiss a group, and the size limits.
//!
//! The creator owns the group; only the owner adds or removes members and dismisses it. The
//! owner cannot quit (they dismiss instead), so a live group always has its owner.

use crate::{check_group_id, check_user_id, Refusal};
use beckon_proto::frames::{GroupMember, GroupProfile};
use beckon_proto::{limits, ErrorCode};
use serde::{Deserialize, Serialize};

/// Tencent's group type names; `Private` is Tencent's GRP_WORK and the default.
pub const GROUP_KINDS: [&str; 5] = ["Private", "Public", "ChatRoom", "AVChatRoom", "Community"];

/// One member and when they joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub joined_at_ms: u64,
}

/// A live group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub group_id: String,
    pub name: String,
    pub kind: String,
    pub owner: String,
    /// In joining order; the owner first.
    pub members: Vec<Member>,
    pub created_at_ms: u64,
}

impl Group {
    pub fn is_member(&self, user_id: &str) -> bool {
        self.members.iter().any(|m| m.user_id == user_id)
    }

    pub fn member_ids(&self) -> Vec<String> {
        self.members.iter().map(|m| m.user_id.clone()).collect()
    }

    pub fn profile(&self) -> GroupProfile {
        GroupProfile {
            group_id: self.group_id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            owner_id: self.owner.clone(),
            member_count: self.members.len() as u64,
            max_member_count: limits::MAX_GROUP_MEMBERS as u64,
            create_time: self.created_at_ms / 1000,
        }
    }

    pub fn member_view(&self, member: &Member) -> GroupMember {
        GroupMember {
            user_id: member.user_id.clone(),
            role: if member.user_id == self.owner {
                "Owner"
            } else {
                "Member"
            }
            .to_owned(),
            join_time: member.joined_at_ms / 1000,
        }
    }

    /// Refuses unless `actor` owns the group.
    pub fn check_owner(&self, actor: &str, what: &str) -> Result<(), Refusal> {
        if actor == self.owner {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::NotGroupOwner,
                format!("only the owner of group {} can {what}", self.group_id),
            ))
        }
    }

    /// Refuses unless `actor` is a member.
    pub fn check_member(&self, actor: &str) -> Result<(), Refusal> {
        if self.is_member(actor) {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::NotGroupMember,
                format!("you are not a member of group {}", self.group_id),
            ))
        }
    }
}

/// Builds a new group from a creation request. Duplicate members are merged; the owner is
/// always a member. Account existence is the caller's to check.
pub fn new_group(
    group_id: String,
    name: &str,
    kind: Option<&str>,
    owner: &str,
    members: &[String],
    now_ms: u64,
) -> Result<Group, Refusal> {
    check_group_id("groupID", &group_id)?;
    if name.is_empty() || name.len() > limits::MAX_GROUP_NAME_BYTES {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!(
                "name must be 1 to {} bytes long",
                limits::MAX_GROUP_NAME_BYTES
            ),
        ));
    }
    let kind = kind.unwrap_or(GROUP_KINDS[0]);
    if !GROUP_KINDS.contains(&kind) {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!(
                "type must be one of {}, got {kind:?}",
                GROUP_KINDS.join(", ")
            ),
        ));
    }
    let mut group = Group {
        group_id,
        name: name.to_owned(),
        kind: kind.to_owned(),
        owner: owner.to_owned(),
        members: vec![Member {
            user_id: owner.to_owned(),
            joined_at_ms: now_ms,
        }],
        created_at_ms: now_ms,
    };
    let added = plan_additions(&group, members)?;
    group
        .members
        .extend(added.into_iter().map(|user_id| Member {
            user_id,
            joined_at_ms: now_ms,
        }));
    Ok(group)
}

/// The users of `candidates` that would join (not yet members, duplicates merged), refused
/// when the group would grow past its limit.
pub fn plan_additions(group: &Group, candidates: &[String]) -> Result<Vec<String>, Refusal> {
    if candidates.len() > limits::MAX_MEMBER_CHANGE.max(limits::MAX_GROUP_MEMBERS) {
        return Err(Refusal::new(
            ErrorCode::InvalidParameter,
            format!("at most {} users per request", limits::MAX_GROUP_MEMBERS),
        ));
    }
    let mut added: Vec<String> = Vec::new();
    for user in candidates {
        check_user_id("userID", user)?;
        if !group.is_member(user) && !added.contains(user) {
            added.push(user.clone());
        }
    }
    // Stored members of one request share a join time and are listed by ID; match that.
    added.sort();
    if group.members.len() + added.len() > limits::MAX_GROUP_MEMBERS {
        return Err(Refusal::new(
            ErrorCode::GroupFull,
            format!(
                "group {} would have {} members; the limit is {}",
                group.group_id,
                group.members.len() + added.len(),
                limits::MAX_GROUP_MEMBERS
            ),
        ));
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn creator_owns_and_duplicates_merge() {
        let g = new_group(
            "g1".into(),
            "team",
            None,
            "alice",
            &users(&["bob", "bob", "alice"]),
            5_000,
        )
        .unwrap();
        assert_eq!(g.member_ids(), users(&["alice", "bob"]));
        assert_eq!(g.kind, "Private");
        assert_eq!(g.member_view(&g.members[0]).role, "Owner");
        assert!(g.check_owner("bob", "dismiss it").is_err());
        assert!(g.check_member("carol").is_err());
    }

    #[test]
    fn limits_and_names() {
        assert_eq!(
            new_group("g".into(), "", None, "a", &[], 0)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameter
        );
        assert_eq!(
            new_group("g".into(), "n", Some("Nope"), "a", &[], 0)
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameter
        );
        let many: Vec<String> = (0..limits::MAX_GROUP_MEMBERS)
            .map(|i| format!("u{i}"))
            .collect();
        assert_eq!(
            new_group("g".into(), "n", None, "a", &many, 0)
                .unwrap_err()
                .code,
            ErrorCode::GroupFull
        );
        let fits = &many[..limits::MAX_GROUP_MEMBERS - 1];
        assert_eq!(
            new_group("g".into(), "n", None, "a", fits, 0)
                .unwrap()
                .members
                .len(),
            limits::MAX_GROUP_MEMBERS
        );
    }
}
