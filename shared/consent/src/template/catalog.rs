//! The built-in templates: read-only, the same for every dealer.

use serde::Serialize;
use serde_json::{Map, Value};

use super::parts::{Placeholder, PlaceholderKind, Rendered};
use super::values::render_body;
use crate::error::RenderError;
use crate::Category;

/// A named, versioned message template of one category.
#[derive(Debug, Serialize)]
pub struct Template {
    /// Kebab-case id, e.g. `auto-pay-failure`.
    pub name: &'static str,
    /// Human title, e.g. `Auto Pay Failure`.
    pub title: &'static str,
    pub version: u32,
    pub category: Category,
    /// The text with `{placeholder}`s, e.g. `{dealerName}: ... {amount} ...`.
    pub body: &'static str,
    /// The variables a caller supplies (not `dealerName`).
    pub placeholders: &'static [Placeholder],
}

pub(super) const fn ph(name: &'static str, kind: PlaceholderKind) -> Placeholder {
    Placeholder { name, kind }
}

use PlaceholderKind::{Date, Money, Text, Time, Url};

static CATALOG: [Template; 7] = [
    Template {
        name: "auto-pay-failure",
        title: "Auto Pay Failure",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Hi {firstName}, your automatic payment of {amount} due {dueDate} \
               did not go through. Please update your payment method at {paymentUrl} or call \
               us. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("dueDate", Date),
            ph("paymentUrl", Url),
        ],
    },
    Template {
        name: "past-due-alert",
        title: "Past Due Alert",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Hi {firstName}, your account is past due. A payment of {amount} \
               was due {dueDate}. Pay at {paymentUrl} or call us. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("dueDate", Date),
            ph("paymentUrl", Url),
        ],
    },
    Template {
        name: "text-to-pay-reminder",
        title: "Text to Pay Reminder",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Hi {firstName}, your payment of {amount} is due {dueDate}. \
               Reply PAY to pay {amount} now. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("dueDate", Date),
        ],
    },
    Template {
        name: "payment-received",
        title: "Payment Received",
        version: 1,
        category: Category::Accounting,
        body: "{dealerName}: Thank you, {firstName}! We received your payment of {amount} on \
               {paymentDate}. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("amount", Money),
            ph("paymentDate", Date),
        ],
    },
    Template {
        name: "service-reminder",
        title: "Service Reminder",
        version: 1,
        category: Category::Service,
        body: "{dealerName}: Hi {firstName}, your {vehicle} is due for {serviceName}. Book at \
               {bookingUrl} or reply to this text. Reply STOP to opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("vehicle", Text),
            ph("serviceName", Text),
            ph("bookingUrl", Url),
        ],
    },
    Template {
        name: "appointment-confirmation",
        title: "Appointment Confirmation",
        version: 1,
        category: Category::Service,
        body: "{dealerName}: Hi {firstName}, your {vehicle} service appointment is confirmed \
               for {appointmentDate} at {appointmentTime}. Reply to reschedule. Reply STOP to \
               opt out.",
        placeholders: &[
            ph("firstName", Text),
            ph("vehicle", Text),
            ph("appointmentDate", Date),
            ph("appointmentTime", Time),
        ],
    },
    Template {
        name: "marketing-offer",
        title: "Marketing Offer",
        version: 1,
        category: Category::Marketing,
        body: "{dealerName}: {offer} Offer ends {endDate}. Details: {offerUrl} Msg & data \
               rates may apply. Reply STOP to opt out.",
        placeholders: &[ph("offer", Text), ph("endDate", Date), ph("offerUrl", Url)],
    },
];

/// Every template, in a stable order.
pub fn catalog() -> &'static [Template] {
    &CATALOG
}

/// The template with this kebab-case name.
pub fn find(name: &str) -> Option<&'static Template> {
    CATALOG.iter().find(|t| t.name == name)
}

impl Template {
    /// The names of the variables a caller must supply, in template order.
    pub fn placeholder_names(&self) -> impl Iterator<Item = &'static str> {
        self.placeholders.iter().map(|p| p.name)
    }

    /// Renders the body with checked, formatted variables; `dealer_name` fills
    /// `{dealerName}`.
    pub fn render(
        &self,
        variables: &Map<String, Value>,
        dealer_name: &str,
    ) -> Result<Rendered, RenderError> {
        render_body(
            self.body,
            self.placeholders.iter().map(|p| (p.name, p.kind)),
            variables,
            dealer_name,
        )
    }
}
