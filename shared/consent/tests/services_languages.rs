//! Replies in Spanish and French: revocations, HELP and AGREE answered in the
//! language they were written in.

use consent::fakes::{mins, noon, past_due_vars, World, DEALER_NAME};
use consent::ledger::ConsentEvent;
use consent::message::{MessageKind, MessageStatus};
use consent::service::replies::ReplyOutcome;
use consent::Category;

#[tokio::test]
async fn a_spanish_revocation_in_plain_words_stops_everything_and_is_answered_in_spanish() {
    // GIVEN accounting authorized and a text scheduled
    let w = World::new().await;
    w.grant(Category::Accounting, noon()).await;
    let scheduled = w
        .send(
            "past-due-alert",
            past_due_vars(),
            Some(noon() + mins(60)),
            noon(),
        )
        .await
        .unwrap()
        .message;
    // WHEN the person writes "Ya no me manden mensajes"
    let outcome = w
        .reply("SM-es-1", "Ya no me manden mensajes", noon() + mins(1))
        .await;
    // THEN every category is revoked, the text suppressed, and the one confirmation is
    // in Spanish with the dealer's name and how to come back
    assert!(
        matches!(outcome, ReplyOutcome::OptedOut { .. }),
        "{outcome:?}"
    );
    assert_eq!(w.message(&scheduled.id).status, MessageStatus::Suppressed);
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].body.starts_with(DEALER_NAME),
        "{}",
        answers[0].body
    );
    assert!(
        answers[0].body.contains("no recibirá más mensajes"),
        "{}",
        answers[0].body
    );
    assert!(answers[0].body.contains("START"));
    // AND the ledger keeps the words
    assert!(w
        .ledger()
        .iter()
        .any(|e| e.event == ConsentEvent::RevokedByReply
            && e.words.as_deref() == Some("Ya no me manden mensajes")));
}

#[tokio::test]
async fn help_and_agree_are_answered_in_the_language_they_were_written_in() {
    let w = World::new().await;
    // AYUDA: the Spanish help text, with the required content
    w.reply("SM-es-help", "AYUDA", noon()).await;
    // AIDE: the French one
    w.reply("SM-fr-help", "Aide svp", noon() + mins(1)).await;
    // Acepto answers a marketing request: granted, confirmed in Spanish
    w.request(Category::Marketing, noon() + mins(2))
        .await
        .unwrap();
    let agreed = w.reply("SM-es-agree", "Sí, acepto", noon() + mins(3)).await;
    assert_eq!(agreed, ReplyOutcome::Agreed(vec![Category::Marketing]));
    let bodies: Vec<String> = w
        .messages_of(MessageKind::Reply)
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let find = |needle: &str| {
        bodies
            .iter()
            .find(|b| b.contains(needle))
            .unwrap_or_else(|| panic!("no answer with {needle:?} in {bodies:?}"))
    };
    let es_help = find("Responda ALTO o STOP para cancelar");
    assert!(
        es_help.starts_with(DEALER_NAME)
            && es_help.contains("Pueden aplicarse tarifas de mensajes y datos")
    );
    assert!(es_help.contains("(202) 555-0100"), "{es_help}");
    let fr_help = find("Répondez ARRET ou STOP");
    assert!(fr_help.contains("Des frais de messagerie et de données peuvent s'appliquer"));
    let es_agree = find("recibirá mensajes de ofertas");
    assert!(es_agree.contains("ALTO o STOP"), "{es_agree}");
}

#[tokio::test]
async fn a_french_revocation_is_confirmed_in_french_and_a_non_revocation_goes_to_staff() {
    let w = World::new().await;
    w.grant(Category::Service, noon()).await;
    // "Arrêtez de me facturer des frais!" is a billing complaint, not a revocation
    let complaint = w
        .reply("SM-fr-1", "Arrêtez de me facturer des frais!", noon())
        .await;
    assert_eq!(complaint, ReplyOutcome::Queued);
    assert!(w.consent().await.may_send(Category::Service).is_allowed());
    // "Arrêtez de m'envoyer des messages" is
    let stop = w
        .reply(
            "SM-fr-2",
            "Arrêtez de m'envoyer des messages",
            noon() + mins(1),
        )
        .await;
    assert!(matches!(stop, ReplyOutcome::OptedOut { .. }), "{stop:?}");
    let answers = w.messages_of(MessageKind::Reply);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].body.contains("vous êtes désabonné"),
        "{}",
        answers[0].body
    );
}
