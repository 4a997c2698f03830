//! The required answers to a person's own texts, in the language they wrote in.
//!
//! Each keeps what carriers require in every language (CTIA Messaging Principles):
//! the dealer's name, how to stop, and that message and data rates may apply (HELP
//! and confirmations of consent); HELP also names the help contact when there is one.
//! The keywords a person is told to send are ones the classifier reads in every
//! language (STOP, START, HELP) beside the language's own (ALTO, ARRÊT, AYUDA, AIDE).

use crate::category::Category;
use crate::reply::Language;

/// The category as it reads inside a sentence of the language.
pub fn category_label(category: Category, language: Language) -> &'static str {
    match (language, category) {
        (Language::En, c) => c.label(),
        (Language::Es, Category::Accounting) => "de cuenta y pagos",
        (Language::Es, Category::Service) => "de servicio",
        (Language::Es, Category::Sales) => "de ventas",
        (Language::Es, Category::Marketing) => "de ofertas",
        (Language::Fr, Category::Accounting) => "de compte et de paiement",
        (Language::Fr, Category::Service) => "d'entretien",
        (Language::Fr, Category::Sales) => "de vente",
        (Language::Fr, Category::Marketing) => "d'offres",
    }
}

fn list(categories: &[Category], language: Language) -> String {
    let labels: Vec<&str> = categories
        .iter()
        .map(|c| category_label(*c, language))
        .collect();
    let and = match language {
        // As the English texts have always read: "account and payment, service texts".
        Language::En => ", ",
        Language::Es => " y ",
        Language::Fr => " et ",
    };
    match labels.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{}{and}{last}", rest.join(", ")),
    }
}

/// The answer to HELP.
pub fn help(dealer: &str, help_contact: Option<&str>, language: Language) -> String {
    match language {
        Language::En => {
            let contact = help_contact
                .map(|c| format!(" Help: {c}."))
                .unwrap_or_default();
            format!("{dealer}: account, service and offer texts you authorized. Msg frequency varies. Msg&data rates may apply.{contact} Reply STOP to opt out.")
        }
        Language::Es => {
            let contact = help_contact
                .map(|c| format!(" Ayuda: {c}."))
                .unwrap_or_default();
            format!("{dealer}: mensajes de cuenta, servicio y ofertas que usted autorizó. La frecuencia varía. Pueden aplicarse tarifas de mensajes y datos.{contact} Responda ALTO o STOP para cancelar.")
        }
        Language::Fr => {
            let contact = help_contact
                .map(|c| format!(" Aide : {c}."))
                .unwrap_or_default();
            format!("{dealer} : messages de compte, d'entretien et d'offres que vous avez autorisés. Fréquence variable. Des frais de messagerie et de données peuvent s'appliquer.{contact} Répondez ARRET ou STOP pour vous désabonner.")
        }
    }
}

/// The one confirmation of an opt-out.
pub fn opted_out(dealer: &str, language: Language) -> String {
    match language {
        Language::En => format!(
            "{dealer}: you are unsubscribed and will receive no more texts. Reply START to resubscribe."
        ),
        Language::Es => format!(
            "{dealer}: se canceló su suscripción y no recibirá más mensajes. Responda START para volver a suscribirse."
        ),
        Language::Fr => format!(
            "{dealer} : vous êtes désabonné et ne recevrez plus de messages. Répondez START pour vous réabonner."
        ),
    }
}

/// The confirmation of an "Agree" (what was granted).
pub fn agreed(dealer: &str, granted: &[Category], language: Language) -> String {
    let what = list(granted, language);
    match language {
        Language::En => format!(
            "{dealer}: thanks, you will receive {what} texts. Msg&data rates may apply. Reply HELP for help, STOP to opt out."
        ),
        Language::Es => format!(
            "{dealer}: gracias, recibirá mensajes {what}. Pueden aplicarse tarifas de mensajes y datos. Responda AYUDA para ayuda, ALTO o STOP para cancelar."
        ),
        Language::Fr => format!(
            "{dealer} : merci, vous recevrez des messages {what}. Des frais de messagerie et de données peuvent s'appliquer. Répondez AIDE pour de l'aide, ARRET ou STOP pour vous désabonner."
        ),
    }
}

/// The word that names a category in an Agree, as the classifier reads it in the language
/// (`agree-for:` rows of reply-rules.tsv).
pub fn category_keyword(category: Category, language: Language) -> &'static str {
    match (language, category) {
        (Language::En, Category::Accounting) => "ACCOUNT",
        (Language::En, Category::Service) => "SERVICE",
        (Language::En, Category::Sales) => "SALES",
        (Language::En, Category::Marketing) => "MARKETING",
        (Language::Es, Category::Accounting) => "CUENTA",
        (Language::Es, Category::Service) => "SERVICIO",
        (Language::Es, Category::Sales) => "VENTAS",
        (Language::Es, Category::Marketing) => "OFERTAS",
        (Language::Fr, Category::Accounting) => "COMPTE",
        (Language::Fr, Category::Service) => "ENTRETIEN",
        (Language::Fr, Category::Sales) => "VENTE",
        (Language::Fr, Category::Marketing) => "OFFRES",
    }
}

/// The question a bare Agree gets when several requests wait: which one it is for. Every
/// reply it suggests is one the classifier reads as an Agree naming its categories.
pub fn which_agree(dealer: &str, waiting: &[Category], language: Language) -> String {
    let (agree, all, or) = match language {
        Language::En => ("AGREE", "ALL", "or"),
        Language::Es => ("ACEPTO", "TODO", "o"),
        Language::Fr => ("J'ACCEPTE", "TOUT", "ou"),
    };
    let options: Vec<String> = waiting
        .iter()
        .map(|c| format!("{agree} {}", category_keyword(*c, language)))
        .collect();
    let options = format!("{}, {or} {agree} {all}", options.join(", "));
    let what = list(waiting, language);
    match language {
        Language::En => format!(
            "{dealer}: you have requests for {what} texts. Which do you agree to? Reply {options}."
        ),
        Language::Es => format!(
            "{dealer}: tiene solicitudes de mensajes {what}. ¿Cuáles acepta? Responda {options}."
        ),
        Language::Fr => format!(
            "{dealer} : vous avez des demandes de messages {what}. Lesquelles acceptez-vous ? Répondez {options}."
        ),
    }
}

/// The confirmation of a START (what was restored).
pub fn resubscribed(dealer: &str, restored: &[Category], language: Language) -> String {
    let what = list(restored, language);
    match language {
        Language::En => format!(
            "{dealer}: you are resubscribed to {what} texts. Msg&data rates may apply. Reply HELP for help, STOP to opt out."
        ),
        Language::Es => format!(
            "{dealer}: volverá a recibir mensajes {what}. Pueden aplicarse tarifas de mensajes y datos. Responda AYUDA para ayuda, ALTO o STOP para cancelar."
        ),
        Language::Fr => format!(
            "{dealer} : vous recevrez de nouveau des messages {what}. Des frais de messagerie et de données peuvent s'appliquer. Répondez AIDE pour de l'aide, ARRET ou STOP pour vous désabonner."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{classify_reply, ReplyKind};

    const ALL: [Language; 3] = [Language::En, Language::Es, Language::Fr];

    #[test]
    fn every_answer_keeps_the_required_content_in_every_language() {
        for language in ALL {
            let rates = match language {
                Language::En => "Msg&data rates may apply",
                Language::Es => "Pueden aplicarse tarifas de mensajes y datos",
                Language::Fr => "Des frais de messagerie et de données peuvent s'appliquer",
            };
            let help = help("Demo Motors", Some("(202) 555-0100"), language);
            let agreed = agreed("Demo Motors", &[Category::Marketing], language);
            let back = resubscribed(
                "Demo Motors",
                &[Category::Service, Category::Sales],
                language,
            );
            for text in [&help, &agreed, &back] {
                assert!(text.starts_with("Demo Motors"), "{text}");
                assert!(text.contains(rates), "{text}");
                assert!(text.contains("STOP"), "{text}");
            }
            assert!(help.contains("(202) 555-0100"), "{help}");
            let stop = opted_out("Demo Motors", language);
            assert!(
                stop.starts_with("Demo Motors") && stop.contains("START"),
                "{stop}"
            );
        }
    }

    #[test]
    fn the_keywords_an_answer_names_do_what_it_says() {
        // Every keyword an answer tells the person to send is read as that keyword in
        // the answer's language.
        for (word, kind, language) in [
            ("STOP", ReplyKind::OptOut, Language::En),
            ("ALTO", ReplyKind::OptOut, Language::Es),
            ("ARRET", ReplyKind::OptOut, Language::Fr),
            ("START", ReplyKind::OptIn, Language::En),
            ("HELP", ReplyKind::Help, Language::En),
            ("AYUDA", ReplyKind::Help, Language::Es),
            ("AIDE", ReplyKind::Help, Language::Fr),
        ] {
            let got = classify_reply(word);
            assert_eq!((got.kind, got.language), (kind, language), "{word}");
        }
    }

    #[test]
    fn which_agree_suggests_only_replies_that_agree_to_what_they_name() {
        use crate::reply::{agree_scope, AgreeScope};
        // GIVEN the question asked when several requests wait, in every language
        for language in ALL {
            let (agree, all) = match language {
                Language::En => ("AGREE", "ALL"),
                Language::Es => ("ACEPTO", "TODO"),
                Language::Fr => ("J'ACCEPTE", "TOUT"),
            };
            let text = which_agree("Demo Motors", &Category::ALL, language);
            // THEN each suggested reply is an Agree in that language naming its category
            for c in Category::ALL {
                let reply = format!("{agree} {}", category_keyword(c, language));
                assert!(text.contains(&reply), "{text}");
                let got = classify_reply(&reply);
                assert_eq!(
                    (got.kind, got.language),
                    (ReplyKind::Agree, language),
                    "{reply}"
                );
                assert_eq!(agree_scope(&reply), AgreeScope::Named(vec![c]), "{reply}");
            }
            let reply = format!("{agree} {all}");
            assert!(text.contains(&reply), "{text}");
            assert_eq!(classify_reply(&reply).kind, ReplyKind::Agree, "{reply}");
            assert_eq!(agree_scope(&reply), AgreeScope::All, "{reply}");
        }
        // AND free wording names categories too; a bare Agree names none
        for (reply, scope) in [
            (
                "I agree to service and marketing texts",
                AgreeScope::Named(vec![Category::Service, Category::Marketing]),
            ),
            (
                "Acepto los mensajes de servicio",
                AgreeScope::Named(vec![Category::Service]),
            ),
            ("agree to all", AgreeScope::All),
            ("Agree", AgreeScope::Unnamed),
            ("Sí, acepto", AgreeScope::Unnamed),
        ] {
            assert_eq!(classify_reply(reply).kind, ReplyKind::Agree, "{reply}");
            assert_eq!(agree_scope(reply), scope, "{reply}");
        }
    }

    #[test]
    fn granted_categories_read_as_a_list() {
        assert_eq!(
            list(
                &[Category::Accounting, Category::Service, Category::Marketing],
                Language::Es
            ),
            "de cuenta y pagos, de servicio y de ofertas"
        );
        assert_eq!(list(&[Category::Sales], Language::Fr), "de vente");
    }
}
