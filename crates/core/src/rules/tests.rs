//! Unit tests of the lifecycle rules, without any I/O.

use super::*;
use crate::DeadlineEffect;

const NOW: u64 = 1_000_000;

/// A notification's event data, parsed for inspection.
fn data(notification: &Notification) -> Value {
    serde_json::from_str(notification.data.get()).expect("event data is JSON")
}

fn new_invitation(invitees: &[&str], timeout: u64, data: &str) -> NewInvitation {
    NewInvitation {
        invite_id: "inv1".into(),
        inviter: "alice".into(),
        group_id: if invitees.len() > 1 {
            "g1".into()
        } else {
            String::new()
        },
        invitees: invitees.iter().map(|s| (*s).to_owned()).collect(),
        data: data.into(),
        timeout,
        online_user_only: false,
        offline_push_info: None,
        invite_message_id: "m1".into(),
    }
}

fn created(invitees: &[&str], timeout: u64) -> Invitation {
    create(
        new_invitation(invitees, timeout, "d"),
        NOW,
        Settings::default(),
    )
    .map_or_else(|r| panic!("create refused: {r}"), |t| t.invitation)
}

fn cmd(actor: &str, kind: CommandKind) -> Command {
    Command {
        actor: actor.into(),
        kind,
    }
}

fn recipients(effects: &Effects) -> Vec<(String, bool, &'static str)> {
    effects
        .notifications
        .iter()
        .map(|n| (n.recipient.clone(), n.skip_origin, n.name))
        .collect()
}

#[test]
fn create_sets_deadline_and_notifies_invitees() {
    let t = create(new_invitation(&["bob"], 30, "d"), NOW, Settings::default()).unwrap();
    assert_eq!(t.invitation.deadline_ms, NOW + 30_000);
    assert_eq!(t.effects.deadline, DeadlineEffect::Set(NOW + 30_000));
    assert_eq!(
        recipients(&t.effects),
        vec![("bob".into(), false, event::NEW_INVITATION_RECEIVED)]
    );
    let Some(HistoryEffect::Append {
        payload,
        from,
        excluded,
    }) = &t.effects.history
    else {
        panic!()
    };
    assert_eq!(from, "alice");
    assert!(!excluded);
    assert_eq!(
        payload.to_payload_data(),
        r#"{"businessID":1,"timeout":30,"data":"d","inviteID":"inv1","groupID":"","actionType":1,"inviter":"alice","inviteeList":["bob"]}"#
    );
}

#[test]
fn zero_timeout_uses_max_lifetime() {
    let settings = Settings {
        max_lifetime_ms: 5_000,
    };
    let t = create(new_invitation(&["bob"], 0, ""), NOW, settings).unwrap();
    assert_eq!(t.invitation.deadline_ms, NOW + 5_000);
}

#[test]
fn create_refusals() {
    let self_invite = create(new_invitation(&["alice"], 0, ""), NOW, Settings::default());
    assert_eq!(self_invite.unwrap_err().code, ErrorCode::InviteSelf);
    let dup = create(
        new_invitation(&["bob", "bob"], 0, ""),
        NOW,
        Settings::default(),
    );
    assert_eq!(dup.unwrap_err().code, ErrorCode::DuplicateInvitee);
    let long = create(
        new_invitation(&["bob"], 86_401, ""),
        NOW,
        Settings::default(),
    );
    assert_eq!(long.unwrap_err().code, ErrorCode::InvalidParameter);
    let big = "x".repeat(limits::MAX_DATA_BYTES + 1);
    let too_big = create(new_invitation(&["bob"], 0, &big), NOW, Settings::default());
    assert_eq!(too_big.unwrap_err().code, ErrorCode::TooLarge);
    let none = create(new_invitation(&[], 0, ""), NOW, Settings::default());
    assert_eq!(none.unwrap_err().code, ErrorCode::InvalidParameter);
}

#[test]
fn accept_ends_one_to_one_and_tells_inviter_and_other_devices() {
    let inv = created(&["bob"], 30);
    let t = apply(
        &inv,
        &cmd("bob", CommandKind::Accept { data: "ok".into() }),
        NOW,
    )
    .unwrap();
    assert!(!t.invitation.is_active());
    assert_eq!(t.effects.deadline, DeadlineEffect::Clear);
    assert_eq!(
        recipients(&t.effects),
        vec![
            ("alice".into(), false, event::INVITEE_ACCEPTED),
            ("bob".into(), true, event::INVITEE_ACCEPTED)
        ]
    );
    assert_eq!(
        data(&t.effects.notifications[1])["handledOnOtherDevice"],
        true
    );
    assert_eq!(
        data(&t.effects.notifications[0]).get("handledOnOtherDevice"),
        None
    );
    // A second answer is refused: the invitation is finished.
    let again = apply(
        &t.invitation,
        &cmd(
            "bob",
            CommandKind::Reject {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(again.unwrap_err().code, ErrorCode::InvitationNotActive);
}

#[test]
fn permission_rules() {
    let inv = created(&["bob"], 30);
    let stranger = apply(
        &inv,
        &cmd(
            "carol",
            CommandKind::Accept {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(stranger.unwrap_err().code, ErrorCode::NoPermission);
    let invitee_cancel = apply(
        &inv,
        &cmd(
            "bob",
            CommandKind::Cancel {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(invitee_cancel.unwrap_err().code, ErrorCode::NoPermission);
    let stranger_modify = apply(
        &inv,
        &cmd(
            "carol",
            CommandKind::Modify {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(stranger_modify.unwrap_err().code, ErrorCode::NoPermission);
}

#[test]
fn cancel_after_end_is_8020() {
    let inv = created(&["bob"], 30);
    let done = apply(
        &inv,
        &cmd(
            "alice",
            CommandKind::Cancel {
                data: String::new(),
            },
        ),
        NOW,
    )
    .unwrap();
    let again = apply(
        &done.invitation,
        &cmd(
            "alice",
            CommandKind::Cancel {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(again.unwrap_err().code, ErrorCode::CancelNotActive);
    let late_accept = apply(
        &done.invitation,
        &cmd(
            "bob",
            CommandKind::Accept {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(
        late_accept.unwrap_err().code,
        ErrorCode::InvitationNotActive
    );
}

#[test]
fn group_accept_keeps_others_ringing_then_cancel_lists_pending() {
    let inv = created(&["bob", "carol", "dave"], 30);
    let t = apply(
        &inv,
        &cmd(
            "bob",
            CommandKind::Accept {
                data: String::new(),
            },
        ),
        NOW,
    )
    .unwrap();
    assert!(t.invitation.is_active());
    assert_eq!(t.effects.deadline, DeadlineEffect::Unchanged);
    let names: Vec<_> = recipients(&t.effects)
        .into_iter()
        .map(|(r, skip, _)| (r, skip))
        .collect();
    assert_eq!(
        names,
        vec![
            ("alice".into(), false),
            ("carol".into(), false),
            ("dave".into(), false),
            ("bob".into(), true)
        ]
    );
    let c = apply(
        &t.invitation,
        &cmd("alice", CommandKind::Cancel { data: "bye".into() }),
        NOW,
    )
    .unwrap();
    let Some(HistoryEffect::Append { payload, .. }) = &c.effects.history else {
        panic!()
    };
    assert_eq!(
        payload.invitee_list,
        vec!["carol".to_owned(), "dave".to_owned()]
    );
    assert_eq!(payload.timeout, 0);
    assert_eq!(
        c.effects.resolved,
        vec!["carol".to_owned(), "dave".to_owned()]
    );
}

#[test]
fn timeout_marks_only_pending_and_sets_self_flags() {
    let inv = created(&["bob", "carol"], 30);
    let t = apply(
        &inv,
        &cmd(
            "bob",
            CommandKind::Reject {
                data: String::new(),
            },
        ),
        NOW,
    )
    .unwrap();
    let early = apply(&t.invitation, &cmd("", CommandKind::Timeout), NOW + 29_999);
    assert!(early.is_err());
    let out = apply(&t.invitation, &cmd("", CommandKind::Timeout), NOW + 30_000).unwrap();
    assert_eq!(out.invitation.state_of("bob"), Some(InviteeState::Rejected));
    assert_eq!(
        out.invitation.state_of("carol"),
        Some(InviteeState::Timeout)
    );
    let n = &out.effects.notifications;
    assert_eq!(n.len(), 2);
    assert_eq!(
        (n[0].recipient.as_str(), &data(&n[0])["isSelfTimeout"]),
        ("alice", &serde_json::json!(false))
    );
    assert_eq!(data(&n[0])["inviteeList"], serde_json::json!(["carol"]));
    assert_eq!(
        (n[1].recipient.as_str(), &data(&n[1])["isSelfTimeout"]),
        ("carol", &serde_json::json!(true))
    );
    assert_eq!(data(&n[1])["data"], "d");
}

#[test]
fn modify_rewrites_invite_message_and_skips_actor_device() {
    let inv = created(&["bob"], 30);
    let t = apply(
        &inv,
        &cmd(
            "bob",
            CommandKind::Modify {
                data: "video".into(),
            },
        ),
        NOW,
    )
    .unwrap();
    assert_eq!(t.invitation.data, "video");
    let Some(HistoryEffect::Rewrite {
        message_id,
        payload,
    }) = &t.effects.history
    else {
        panic!()
    };
    assert_eq!(message_id, "m1");
    assert_eq!(
        (payload.action_type, payload.timeout, payload.data.as_str()),
        (1, 30, "video")
    );
    assert_eq!(
        recipients(&t.effects),
        vec![
            ("alice".into(), false, event::INVITATION_MODIFIED),
            ("bob".into(), true, event::INVITATION_MODIFIED)
        ]
    );
}

#[test]
fn online_only_has_no_history_and_cannot_be_modified() {
    let mut new = new_invitation(&["bob"], 30, "");
    new.online_user_only = true;
    let t = create(new, NOW, Settings::default()).unwrap();
    assert!(t.effects.history.is_none());
    assert!(t.invitation.invite_message_id.is_none());
    let modify = apply(
        &t.invitation,
        &cmd(
            "alice",
            CommandKind::Modify {
                data: String::new(),
            },
        ),
        NOW,
    );
    assert_eq!(modify.unwrap_err().code, ErrorCode::OnlineOnlyNotModifiable);
    let accept = apply(
        &t.invitation,
        &cmd(
            "bob",
            CommandKind::Accept {
                data: String::new(),
            },
        ),
        NOW,
    )
    .unwrap();
    assert!(accept.effects.history.is_none());
}

#[test]
fn exclude_flags_read_values() {
    let t = create(
        new_invitation(&["bob"], 30, r#"{"excludeFromHistoryMessage":true}"#),
        NOW,
        Settings::default(),
    )
    .unwrap();
    assert!(matches!(
        t.effects.history,
        Some(HistoryEffect::Append { excluded: true, .. })
    ));
    let f = create(
        new_invitation(&["bob"], 30, r#"{"excludeFromHistoryMessage":false}"#),
        NOW,
        Settings::default(),
    )
    .unwrap();
    assert!(matches!(
        f.effects.history,
        Some(HistoryEffect::Append {
            excluded: false,
            ..
        })
    ));
    let timeout_excluded = create(
        new_invitation(
            &["bob"],
            1,
            r#"{"excludeTimeoutSignalingFromHistoryMessage":true}"#,
        ),
        NOW,
        Settings::default(),
    )
    .unwrap();
    assert!(matches!(
        timeout_excluded.effects.history,
        Some(HistoryEffect::Append {
            excluded: false,
            ..
        })
    ));
    let out = apply(
        &timeout_excluded.invitation,
        &cmd("", CommandKind::Timeout),
        NOW + 1000,
    )
    .unwrap();
    assert!(matches!(
        out.effects.history,
        Some(HistoryEffect::Append { excluded: true, .. })
    ));
}

#[test]
fn withdrawn_members_stop_ringing_and_others_learn_who_left() {
    let inv = created(&["bob", "carol", "dave"], 30);
    let kind = CommandKind::Withdraw {
        users: vec!["carol".into()],
        reason: WithdrawReason::MemberQuit,
    };
    let t = apply(&inv, &cmd("", kind), NOW).unwrap();
    assert_eq!(
        t.invitation.state_of("carol"),
        Some(InviteeState::Cancelled)
    );
    assert!(t.invitation.is_active());
    let n = &t.effects.notifications;
    assert_eq!(
        (n[0].recipient.as_str(), n[0].name),
        ("carol", event::INVITATION_CANCELLED)
    );
    assert_eq!(data(&n[0])["reason"], "memberQuit");
    let told: Vec<_> = n[1..]
        .iter()
        .map(|n| (n.recipient.as_str(), n.name))
        .collect();
    assert_eq!(
        told,
        vec![
            ("alice", event::INVITEE_REJECTED),
            ("bob", event::INVITEE_REJECTED),
            ("dave", event::INVITEE_REJECTED)
        ]
    );
    assert_eq!(data(&n[1])["invitee"], "carol");
    let Some(HistoryEffect::Append { payload, .. }) = &t.effects.history else {
        panic!()
    };
    assert_eq!(
        (payload.action_type, payload.invitee_list.clone()),
        (2, vec!["carol".to_owned()])
    );
    // Someone not pending is not withdrawn again.
    let again = CommandKind::Withdraw {
        users: vec!["carol".into()],
        reason: WithdrawReason::MemberRemoved,
    };
    assert!(apply(&t.invitation, &cmd("", again), NOW).is_err());
}

#[test]
fn inviter_leaving_or_dismissal_cancels_for_everyone() {
    let inv = created(&["bob", "carol"], 30);
    let kind = CommandKind::Withdraw {
        users: vec!["alice".into()],
        reason: WithdrawReason::MemberQuit,
    };
    let t = apply(&inv, &cmd("", kind), NOW).unwrap();
    assert!(!t.invitation.is_active());
    assert_eq!(t.effects.deadline, DeadlineEffect::Clear);
    let names: Vec<_> = t
        .effects
        .notifications
        .iter()
        .map(|n| (n.recipient.as_str(), n.name))
        .collect();
    assert_eq!(
        names,
        vec![
            ("bob", event::INVITATION_CANCELLED),
            ("carol", event::INVITATION_CANCELLED),
            ("alice", event::INVITATION_CANCELLED)
        ]
    );
    assert_eq!(data(&t.effects.notifications[2])["reason"], "inviterLeft");
    let dismissed = CommandKind::Withdraw {
        users: Vec::new(),
        reason: WithdrawReason::GroupDismissed,
    };
    let d = apply(&inv, &cmd("", dismissed), NOW).unwrap();
    assert!(!d.invitation.is_active());
    assert_eq!(
        data(&d.effects.notifications[0])["reason"],
        "groupDismissed"
    );
}

#[test]
fn departed_members_hear_nothing_more_and_cannot_modify() {
    let inv = created(&["bob", "carol", "dave"], 30);
    let accepted = apply(
        &inv,
        &cmd(
            "carol",
            CommandKind::Accept {
                data: String::new(),
            },
        ),
        NOW,
    )
    .unwrap();
    // carol answered, then left: nothing rings, but she is out of the invitation.
    let kind = CommandKind::Withdraw {
        users: vec!["carol".into()],
        reason: WithdrawReason::MemberQuit,
    };
    let left = apply(&accepted.invitation, &cmd("", kind), NOW).unwrap();
    assert!(left.effects.notifications.is_empty());
    assert!(left.effects.history.is_none());
    assert_eq!(left.invitation.departed, vec!["carol".to_owned()]);
    let modify = apply(
        &left.invitation,
        &cmd("carol", CommandKind::Modify { data: "x".into() }),
        NOW,
    );
    assert_eq!(modify.unwrap_err().code, ErrorCode::NoPermission);
    let answered = apply(
        &left.invitation,
        &cmd(
            "bob",
            CommandKind::Accept {
                data: String::new(),
            },
        ),
        NOW,
    )
    .unwrap();
    assert!(answered
        .effects
        .notifications
        .iter()
        .all(|n| n.recipient != "carol"));
    // Withdrawing her again changes nothing.
    let again = CommandKind::Withdraw {
        users: vec!["carol".into()],
        reason: WithdrawReason::MemberRemoved,
    };
    assert!(apply(&left.invitation, &cmd("", again), NOW).is_err());
}
