//! Smoke test: two users ring each other once through the SDK.

use beckon_client::{event, ActionParams, InviteParams};
use beckon_tests::{expect_event, TestServer};

#[tokio::test]
async fn invite_and_accept() {
    let server = TestServer::start().await;
    let (alice, mut alice_events) = server.client("alice").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let sent = alice
        .invite(InviteParams {
            user_id: "bob".into(),
            data: Some("hi".into()),
            timeout: Some(30),
            ..Default::default()
        })
        .await
        .expect("invite");
    let ring = expect_event(&mut bob_events, event::NEW_INVITATION_RECEIVED).await;
    assert_eq!(ring.data["inviteID"], sent.invite_id.as_str());
    bob.accept(ActionParams {
        invite_id: sent.invite_id.clone(),
        data: None,
    })
    .await
    .expect("accept");
    let accepted = expect_event(&mut alice_events, event::INVITEE_ACCEPTED).await;
    assert_eq!(accepted.data["invitee"], "bob");
}
